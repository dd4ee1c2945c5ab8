from websockets.asyncio.server import broadcast

from workshop_lib.checks.chat import q3

members = set()


async def chat_handler(websocket):
    name = await websocket.recv()  # the first message is the member's name
    members.add(websocket)  # register
    broadcast(members, f"{name} joined")
    try:
        async for text in websocket:
            # To everyone at once: broadcast() writes to each connection and waits for none.
            broadcast(members, f"{name}: {text}")
    finally:
        members.discard(websocket)  # unregister, however the connection ended
        broadcast(members, f"{name} left")


q3.check(chat_handler, members)
