import json

from websockets.asyncio.client import connect

from workshop_lib.checks.auth import q1


async def echo_as_browser(url, origin, token, text):
    """Log in with a first message, as a browser page must, then return the echo of `text`."""
    async with connect(url, origin=origin) as websocket:
        await websocket.send(json.dumps({"type": "auth", "token": token}))
        reply = json.loads(await websocket.recv())  # closed with 4001 if the token is wrong
        assert reply == {"type": "auth.ok"}, reply
        await websocket.send(text)
        return await websocket.recv()


q1.check(echo_as_browser)
