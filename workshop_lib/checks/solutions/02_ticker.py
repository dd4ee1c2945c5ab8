import asyncio
import json

from websockets.asyncio.server import broadcast

from workshop_lib.checks.ball import q3


async def ticker(clients, step, rate, seconds):
    """Send a tick event to every client `rate` times a second for `seconds`, drift-free."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(1, int(rate * seconds) + 1):
        step()  # the tick's work
        broadcast(clients, json.dumps({"type": "tick", "n": n}))  # to all, waiting for none
        # Until tick n + 1's scheduled time, whatever the work took: no drift.
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))


q3.check(ticker)
