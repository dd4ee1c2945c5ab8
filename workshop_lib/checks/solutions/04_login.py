import json

from websockets.asyncio.client import connect

from workshop_lib.checks.auth import q1


async def echo_as_browser(url, origin, token, text):
    """Log in with a first message, as a browser page must, then return the echo of `text`."""
    async with connect(url, origin=origin) as websocket:
        await websocket.send(json.dumps({"type": "auth", "token": token}))
        # A wrong token: {"type": "error", "code": "unauthorized", ..., "close": 4001}, then
        # the close with 4001 (said in band too, since a proxy may drop close codes).
        reply = json.loads(await websocket.recv())
        assert reply == {"type": "auth.ok"}, reply
        await websocket.send(text)
        return await websocket.recv()


q1.check(echo_as_browser)
