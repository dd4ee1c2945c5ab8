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
import logging
import threading
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from .backoff import backoff_delays
from .handle import bearer
from .protocol import NO_RETRY

__all__ = ["FINAL_CLOSE_CODES", "Event", "ReadingClient"]

Event = dict[str, Any]

logger = logging.getLogger("workshop_lib.client")

# Closes after which a reconnect would be refused for the same reason (protocol.NO_RETRY).
FINAL_CLOSE_CODES = NO_RETRY


class ReadingClient:
    """Opens a connection to ``url``; :meth:`start_reading` starts the reader thread.

    ``token``: sent as ``Authorization: Bearer ...`` to a server that asks for one.
    ``reconnect``: when the connection drops (the server restarts, the network blips), the
    reader thread connects again after a backoff (:func:`~workshop_lib.backoff.backoff_delays`)
    and :meth:`on_open` runs again on the new connection, so a chat member rejoins.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        token: str | None = None,
        reconnect: bool = False,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.token = token
        self.reconnect = reconnect
        self.reconnects = 0  # how many times the connection was restored
        self._closing = threading.Event()
        self._exit_stack, self._websocket = self._open()
        self._reader: threading.Thread | None = None

    def _open(self) -> tuple[ExitStack, ClientConnection]:
        """A new connection, greeted by :meth:`on_open`, inside the ``with`` that closes it."""
        with ExitStack() as stack:
            websocket = stack.enter_context(
                connect(self.url, open_timeout=self.timeout, additional_headers=bearer(self.token))
            )
            self.on_open(websocket)
            return stack.pop_all(), websocket  # an exception above closes it at once

    def on_open(self, websocket: ClientConnection) -> None:
        """Runs on each new connection before reading starts; subclasses greet the server."""

    def start_reading(self, name: str) -> None:
        """Read every message on a daemon thread called ``name``, until the connection ends."""
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                for message in self._websocket:
                    self.handle(json.loads(message))
            except ConnectionClosed:
                pass  # close(), or the server went away
            if (
                self._closing.is_set()
                or not self.reconnect
                or self._websocket.close_code in FINAL_CLOSE_CODES
                or not self._reopen()
            ):
                return  # the thread ends

    def _reopen(self) -> bool:
        """Connect again after growing waits; False if close() came first."""
        for delay in backoff_delays():
            if self._closing.wait(delay):
                return False
            try:
                stack, websocket = self._open()
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.info("reconnecting to %s: %s", self.url, exc)
                continue
            self._exit_stack.close()  # the old connection's `with`: it is closed already
            self._exit_stack, self._websocket = stack, websocket
            self.reconnects += 1
            logger.info("reconnected to %s", self.url)
            return True
        return False  # backoff_delays() never ends; this is for type checkers

    def handle(self, event: Event) -> None:
        """Called on the reader thread for each event; subclasses keep what they need."""
        raise NotImplementedError

    def send_event(self, event: Event) -> None:
        """Send one event as JSON text (safe from any thread but the reader's)."""
        self._websocket.send(json.dumps(event))

    @property
    def connected(self) -> bool:
        """True while the connection is open and read."""
        return (
            self._reader is not None
            and self._reader.is_alive()
            and self._websocket.protocol.state is State.OPEN
        )

    @property
    def close_code(self) -> int | None:
        """How the connection ended (None while it is open)."""
        return self._websocket.close_code

    def close(self) -> None:
        """Close the connection (closing handshake included) and end the reader thread."""
        self._closing.set()
        self._exit_stack.close()
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> ReadingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
