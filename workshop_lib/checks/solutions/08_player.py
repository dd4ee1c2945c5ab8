import asyncio
import json

from websockets.asyncio.client import connect

from workshop_lib.checks.voice import q1
from workshop_lib.realtime import user_message
from workshop_lib.realtime.audio import b64_to_pcm, samples_to_ms


async def player(url, question, speaker, microphone):
    """Play the spoken answer; when the user talks over it, stop and truncate at what was heard."""
    async with connect(url, proxy=None) as websocket:

        async def send(event):
            await websocket.send(json.dumps(event))

        vad = {"type": "server_vad"}
        await send({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"],
                                                          "audio": {"input": {"turn_detection": vad}}}})
        await send(user_message(question))
        await send({"type": "response.create"})
        listening = asyncio.create_task(microphone(websocket))  # the user's microphone, always on

        frames = asyncio.Queue()
        played_ms = 0
        received_ms = 0

        async def play():
            nonlocal played_ms
            while True:
                frame = await frames.get()
                await speaker.play(frame)  # returns once the frame has been heard
                played_ms += samples_to_ms(len(frame))

        playing = asyncio.create_task(play())
        item_id = None
        async for message in websocket:
            event = json.loads(message)
            if event["type"] == "response.output_audio.delta":
                item_id = event["item_id"]
                samples = b64_to_pcm(event["delta"])
                received_ms += samples_to_ms(len(samples))
                for start in range(0, len(samples), 480):  # 20 ms frames, as a sound card takes them
                    frames.put_nowait(samples[start:start + 480])
            elif event["type"] == "input_audio_buffer.speech_started" and item_id is not None:
                playing.cancel()  # stop the sound at once: the user is speaking
                await send({"type": "conversation.item.truncate", "item_id": item_id,
                            "content_index": 0, "audio_end_ms": played_ms})
            elif event["type"] == "conversation.item.truncated":
                listening.cancel()
                return played_ms


q1.check(player)
