import json

from websockets.asyncio.client import connect

from workshop_lib.checks.realtime import q1
from workshop_lib.realtime import text_session, user_message


async def ask(url, text):
    """Send `text`, ask for a response, and return the answer joined from its deltas."""
    answer = ""
    async with connect(url, proxy=None) as websocket:
        await websocket.send(json.dumps(text_session()))  # text, not the default audio
        await websocket.send(json.dumps(user_message(text)))
        await websocket.send(json.dumps({"type": "response.create"}))
        async for message in websocket:
            event = json.loads(message)
            if event["type"] == "response.output_text.delta":
                answer += event["delta"]
            elif event["type"] == "response.done":
                return answer


q1.check(ask)
