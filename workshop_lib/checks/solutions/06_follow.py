import json

from websockets.asyncio.client import connect

from workshop_lib.checks.scaling import q1


async def follow_room(urls, want):
    """The first `want` chat messages as (id, text), each once, in order; when a server goes
    away, join the next address with "since" and take what was missed from its welcome."""
    got = []
    last_id = None
    for url in urls:
        async with connect(url, proxy=None) as websocket:
            join = {"type": "chat.join", "name": "reader"}
            if last_id is not None:
                join["since"] = last_id  # only what came after the newest message we saw
            await websocket.send(json.dumps(join))
            welcome = json.loads(await websocket.recv())
            for message in welcome["history"] if last_id is not None else []:
                got.append((message["id"], message["text"]))
                last_id = message["id"]
            async for raw in websocket:  # ends when the server goes away (1001)
                event = json.loads(raw)
                if event["type"] == "chat.message":
                    got.append((event["id"], event["text"]))
                    last_id = event["id"]
                if len(got) >= want:
                    return got
    return got


q1.check(follow_room)
