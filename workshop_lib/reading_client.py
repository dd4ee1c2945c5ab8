"""A JSON-event client that reads on a thread of its own: the base of the lesson clients.

A client of a stream (the ball) or a room (the chat) must keep reading: one that stops
makes the server skip it or drop it, and makes its own closing handshake wait behind the
messages it never read. So these clients read on a daemon thread and hand each decoded
event to :meth:`ReadingClient.handle`, while the notebook's thread sends::

    class Printer(ReadingClient):
        def handle(self, event):
            print(event["type"])

    with Printer(url) as client:
        client.send_event({"type": "ball.kick", "dx": 1, "dy": 0})
"""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

__all__ = ["Event", "ReadingClient"]

Event = dict[str, Any]


class ReadingClient:
    """Opens a connection to ``url``; :meth:`start_reading` starts the reader thread."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self._exit_stack = ExitStack()  # holds the connection's `with` until close()
        self._websocket: ClientConnection = self._exit_stack.enter_context(
            connect(url, open_timeout=timeout)
        )
        self._reader: threading.Thread | None = None

    def start_reading(self, name: str) -> None:
        """Read every message on a daemon thread called ``name``, until the connection ends."""
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self._websocket:
                self.handle(json.loads(message))
        except ConnectionClosed:
            pass  # close(), or the server went away: the thread ends

    def handle(self, event: Event) -> None:
        """Called on the reader thread for each event; subclasses keep what they need."""
        raise NotImplementedError

    def send_event(self, event: Event) -> None:
        """Send one event as JSON text (safe from any thread but the reader's)."""
        self._websocket.send(json.dumps(event))

    @property
    def connected(self) -> bool:
        """True while the reader thread runs."""
        return self._reader is not None and self._reader.is_alive()

    @property
    def close_code(self) -> int | None:
        """How the connection ended (None while it is open)."""
        return self._websocket.close_code

    def close(self) -> None:
        """Close the connection (closing handshake included) and end the reader thread."""
        self._exit_stack.close()
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> ReadingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
