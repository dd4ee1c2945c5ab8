"""A session's events, written a loop turn at a time: the events one turn makes, one write.

A response starts with five events at once (``response.created``, the item added twice,
the content part, the first delta) and a client's item is answered with two. Written one
``websocket.send()`` each, that is one system call per event; gathered until the loop's next
turn and handed to :func:`~workshop_lib.wire.fanout.fanout` together, they are one. Each event
is still its own frame and their order is kept: the client sees no difference, only sooner
(``bench/realtime_stream.py``).

Back-pressure stays: when the connection's transport already holds more than
``high_water`` bytes unsent, :meth:`EventWriter.send` flushes and then waits in
websockets' own ``send()`` for the client to read, as it did before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.server import ServerConnection

from ..wire.fanout import fanout
from .wire import encode

__all__ = ["EventWriter"]


class EventWriter:
    """Write ``websocket``'s server events, those of one loop turn in one write."""

    def __init__(self, websocket: ServerConnection, high_water: int = 64 * 1024) -> None:
        self.websocket = websocket
        self.high_water = high_water
        self._pending: list[str] = []
        self._scheduled = False

    async def send(self, event: dict[str, Any] | str) -> None:
        """Queue ``event`` for this loop turn's write; wait only for a client that lags.

        ``event`` may be its JSON text already (:func:`~.wire.event_json`).
        """
        text = event if isinstance(event, str) else encode(event)
        transport = self.websocket.transport
        if transport is None or transport.get_write_buffer_size() > self.high_water:
            self.flush()
            await self.websocket.send(text)  # websockets waits for the client to read
            return
        self._pending.append(text)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    # The session sees that its send() takes JSON text too (a bound method reads this).
    send.takes_text = True  # type: ignore[attr-defined]

    def write_now(self, text: str) -> bool:
        """Write what is queued and ``text`` at once, without waiting for the loop's turn
        to end (a delta before a pause); False, and nothing written, if the client lags:
        then :meth:`send` it, which waits."""
        transport = self.websocket.transport
        if transport is None or transport.get_write_buffer_size() > self.high_water:
            return False
        self._pending.append(text)
        self.flush()
        return True

    def flush(self) -> None:
        """Write what is queued now (before a close, or when the loop turn ends)."""
        self._scheduled = False
        if self._pending:
            texts, self._pending = self._pending, []
            fanout([self.websocket], *texts)
