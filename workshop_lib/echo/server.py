"""The echo lesson: every message comes back unchanged, text as text, binary as binary.

This is the whole server side of the first lesson, in the shape of websockets' own
examples::

    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)
"""

from __future__ import annotations

from collections.abc import Mapping

from websockets.asyncio.server import ServerConnection

from ..lesson import Handler, Lesson, Page

__all__ = ["EchoLesson", "echo"]


async def echo(websocket: ServerConnection) -> None:
    """Send every message back to its sender, unchanged and in order."""
    # `async for` ends when the client closes; a str stays a str and bytes stay bytes.
    async for message in websocket:
        await websocket.send(message)


class EchoLesson(Lesson):
    """The echo at ``/echo``, and at ``/`` so that ``ws://HOST:PORT`` is an echo server too."""

    name = "echo"
    pages = (Page("echo", "Echo", "echo.js"),)
    order = 10  # its place among the installed lessons: lower comes first

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/": echo, "/echo": echo}
