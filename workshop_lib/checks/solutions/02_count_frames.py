import time

from websockets.asyncio.client import connect

from workshop_lib.checks.ball import q1


async def count_frames(url, seconds):
    """Listen to the ball stream for `seconds`; return the frames received per second."""
    frames = 0
    async with connect(url) as websocket:
        start = time.perf_counter()
        async for message in websocket:
            frames += 1
            if time.perf_counter() - start >= seconds:
                break
        elapsed = time.perf_counter() - start
    return frames / elapsed


q1.check(count_frames)
