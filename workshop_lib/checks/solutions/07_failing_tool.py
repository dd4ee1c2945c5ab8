import json

from websockets.asyncio.client import connect

from workshop_lib.checks.function_calling import WEATHER_TOOL, q3
from workshop_lib.realtime import user_message


async def safe_tool_loop(url, question, get_weather):
    """The tool loop, where a tool that raises becomes an {"error": ...} output."""
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
        call = next(item for item in done["response"]["output"] if item["type"] == "function_call")
        try:
            result = get_weather(**json.loads(call["arguments"]))
        except Exception as exc:  # the model should hear what went wrong, not nothing
            result = {"error": str(exc)}
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps(result)}
        await websocket.send(json.dumps({"type": "conversation.item.create", "item": output}))
        await websocket.send(json.dumps({"type": "response.create"}))
        done = await until("response.done")
        return done["response"]["output"][0]["content"][0]["text"]


q3.check(safe_tool_loop)
