import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from workshop_lib.clients.backoff import backoff_delays
from workshop_lib.checks.auth import q2


async def collect_ticks(url, count):
    """Collect `count` ball.state ticks, reconnecting (with backoff) whenever the link drops."""
    ticks = []
    delays = backoff_delays()
    while len(ticks) < count:
        try:
            async with connect(url) as websocket:
                delays = backoff_delays()  # connected: the next outage starts from short waits
                async for message in websocket:
                    event = json.loads(message)
                    if event["type"] == "ball.state":
                        ticks.append(event["tick"])
                        if len(ticks) == count:
                            break
        except (OSError, ConnectionClosed):
            pass  # refused (no server yet) or dropped: wait, then try again
        if len(ticks) < count:
            await asyncio.sleep(next(delays))
    return ticks


q2.check(collect_ticks)
