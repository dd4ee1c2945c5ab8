import asyncio
import json
import time
from collections import Counter

from websockets.asyncio.client import connect

from workshop_lib.checks.chat import q2


async def count_messages(url, seconds):
    """Join the room, listen for `seconds`, return how many messages each person sent."""
    counts = Counter()
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "counter"}))
        start = time.perf_counter()
        while (left := seconds - (time.perf_counter() - start)) > 0:
            try:
                event = json.loads(await asyncio.wait_for(websocket.recv(), left))
            except TimeoutError:
                break  # the time is up while the room was quiet
            if event["type"] == "chat.message":
                counts[event["from"]] += 1
    return dict(counts)


q2.check(count_messages)
