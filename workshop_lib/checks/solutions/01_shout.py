from workshop_lib.checks.echo import q1


async def shout(websocket):
    # The echo handler, with one change: what it sends back.
    async for message in websocket:
        await websocket.send(message.upper() + "!")


q1.check(shout)
