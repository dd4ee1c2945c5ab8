import json

from websockets.asyncio.client import connect

from workshop_lib.checks.voice import q2
from workshop_lib.realtime.audio import pcm_to_b64, samples_to_ms


async def push_to_talk(url, presses):
    """Each press of the button is a recording: commit it if it is long enough, and ask."""
    answers = []
    async with connect(url, proxy=None) as websocket:

        async def until(kind):
            async for message in websocket:
                event = json.loads(message)
                if event["type"] == kind:
                    return event

        no_vad = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        await websocket.send(json.dumps({"type": "session.update", "session": no_vad}))
        await until("session.updated")
        for press in presses:
            await websocket.send(json.dumps({"type": "input_audio_buffer.clear"}))  # button down
            await until("input_audio_buffer.cleared")
            for start in range(0, len(press), 4800):  # 200 ms a chunk, as the microphone gives them
                chunk = press[start:start + 4800]
                await websocket.send(json.dumps({"type": "input_audio_buffer.append", "audio": pcm_to_b64(chunk)}))
            if samples_to_ms(len(press)) < 100:  # button up: the service refuses less than 100 ms
                continue
            await websocket.send(json.dumps({"type": "input_audio_buffer.commit"}))
            await websocket.send(json.dumps({"type": "response.create"}))  # a commit asks nothing
            done = await until("response.done")
            answers.append(done["response"]["output"][0]["content"][0]["transcript"])  # the spoken answer's words
    return answers


q2.check(push_to_talk)
