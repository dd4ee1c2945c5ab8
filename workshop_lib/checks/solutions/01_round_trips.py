import time

from websockets.asyncio.client import connect

from workshop_lib.checks.echo import q2


async def measure_round_trips(url, n):
    """Send n messages, one at a time; return each round trip in milliseconds."""
    times = []
    async with connect(url) as websocket:
        for i in range(n):
            start = time.perf_counter()
            await websocket.send(f"ping {i}")
            await websocket.recv()  # the echo: the round trip ends here
            times.append((time.perf_counter() - start) * 1000)
    return times


q2.check(measure_round_trips)
