import json

from websockets.asyncio.client import connect

from workshop_lib.checks.function_calling import WEATHER_TOOL, q2
from workshop_lib.realtime import user_message


async def two_calls(url, question, get_weather):
    """Answer every call of the response, then ask once for the answer."""
    async with connect(url, proxy=None) as websocket:

        async def until(kind):
            async for message in websocket:
                event = json.loads(message)
                if event["type"] == kind:
                    return event

        await websocket.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER_TOOL]}}))
        await until("session.updated")
        await websocket.send(json.dumps(user_message(question)))
        await websocket.send(json.dumps({"type": "response.create"}))
        done = await until("response.done")
        for call in done["response"]["output"]:
            if call["type"] == "function_call":
                result = get_weather(**json.loads(call["arguments"]))
                output = {"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps(result)}
                await websocket.send(json.dumps({"type": "conversation.item.create", "item": output}))
        await websocket.send(json.dumps({"type": "response.create"}))  # once, after all the outputs
        done = await until("response.done")
        return done["response"]["output"][0]["content"][0]["text"]


q2.check(two_calls)
