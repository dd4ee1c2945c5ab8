"""Every TCP connection the server holds, from accept to close, handshake finished or not.

websockets keeps the connections that completed their handshake (``server.connections``);
stopping also has to reach the others. A client that sent half a handshake would otherwise
hold ``server.close()`` until ``open_timeout`` (10 s), and one that never reads would hold
it until ``close_timeout``. So the app makes its connections through this registry
(websockets' ``create_connection`` hook) and can cut them::

    connections = Connections(on_lost=limits.release)
    server = await serve(handler, host, port, create_connection=connections.factory)
    ...
    connections.abort_handshakes()   # at stop: nobody waits for a handshake to finish
    connections.abort_all()          # and, after a grace period, for a close to finish

Each connection's kernel buffers are capped on accept (``buffers``: SO_SNDBUF and
SO_RCVBUF), so a client that does not read costs a bounded amount of kernel memory whatever
path it opens (Linux lets a socket's buffers grow to megabytes), and one that sends faster
than the server takes its messages is held back by TCP itself, in its own memory. And a
client that does not read is read from no more, and cut once its buffer has stayed full for
``stall_timeout`` seconds (stalls.py).

It fails safe. The connection class registers itself in asyncio's ``connection_made()`` and
``connection_lost()``, which websockets' asyncio ``Connection`` implements (it is the
asyncio protocol), and cuts through the ``transport`` that ``connection_made()`` keeps:
websockets internals, which a release may change. At import :func:`missing_internals`
checks them; if one is missing, one WARNING is logged and connections are registered when
made and forgotten when websockets' public ``wait_closed()`` returns, with the system's
buffer sizes, and cut with ``close()`` where no transport is to be found
(:data:`IMPLEMENTATION` says which is in use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from ..server.tasks import TaskOwner
from ..wire.backlog import limit_send_buffer
from ..wire.internals import assigned_in, choose
from ..wire.stalls import STALL_TIMEOUT, BoundedWrites, StallWatch

__all__ = ["BUFFERS", "IMPLEMENTATION", "Connections", "missing_internals"]

logger = logging.getLogger("workshop_lib.app.connections")

# Enough for any lesson's burst (and a 64 KiB echo); lessons may set a smaller one. On a
# LAN (a millisecond's round trip) 64 KiB windows still carry tens of MB a second.
BUFFERS = 64 * 1024


class Connections:
    """The set of the server's connections; ``factory`` is websockets' ``create_connection``.

    ``on_lost(connection)`` runs when a TCP connection is gone (handshake done or not);
    ``buffers``: the kernel's send and receive buffer for each (None: the system's);
    ``stall_timeout``: seconds a connection's write buffer may stay full before it is cut
    (None: never; stalls.py).
    """

    def __init__(
        self,
        on_lost: Callable[[ServerConnection], None] | None = None,
        buffers: int | None = BUFFERS,
        stall_timeout: float | None = STALL_TIMEOUT,
    ) -> None:
        self.all: set[ServerConnection] = set()
        self.on_lost = on_lost
        self.buffers = buffers
        self.stall_watch = StallWatch(stall_timeout)  # its .timeout may change any time
        self.tasks = TaskOwner("connections")  # the fallback's watches and closes

    def factory(self, *args: Any, **kwargs: Any) -> ServerConnection:
        """Make a connection the way websockets would, registered here."""
        if IMPLEMENTATION == "asyncio callbacks":
            return _Tracked(self, *args, **kwargs)
        return _Watched(self, *args, **kwargs)

    def pending(self) -> list[ServerConnection]:
        """Connections whose opening handshake is not finished."""
        return [c for c in self.all if c.state is State.CONNECTING]

    def abort_handshakes(self) -> int:
        """Cut every connection still in its opening handshake; return how many."""
        pending = self.pending()
        for connection in pending:
            self._abort(connection)
        return len(pending)

    def abort_stalled(self) -> int:
        """Cut every connection whose peer is not reading (its write buffer is full): it
        would not read a close frame either, so waiting for its closing handshake is waste."""
        stalled = [c for c in self.all if isinstance(c, BoundedWrites) and c.writes_stalled]
        for connection in stalled:
            self._abort(connection)
        return len(stalled)

    def abort_all(self) -> int:
        """Cut every connection at once, without a closing handshake; return how many."""
        connections = list(self.all)
        for connection in connections:
            self._abort(connection)
        return len(connections)

    def _abort(self, connection: ServerConnection) -> None:
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()
        else:  # the fallback, without a transport: a close, cut by websockets' close timeout
            self.tasks.spawn(connection.close(), name="connection-close")

    def _forget(self, connection: ServerConnection) -> None:
        if connection in self.all:
            self.all.discard(connection)
            if self.on_lost is not None:
                self.on_lost(connection)


class _Tracked(BoundedWrites, ServerConnection):
    """websockets' server connection, registered in a :class:`Connections` while it lives,
    whose peer must read what it is sent (stalls.py)."""

    def __init__(self, registry: Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registry = registry

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stall_watch = self._registry.stall_watch
        super().connection_made(transport)
        self._registry.all.add(self)
        size = self._registry.buffers
        if size is not None:
            limit_send_buffer(self, size)
            sock = transport.get_extra_info("socket")
            # No socket (a test's transport), or a system that refuses: the defaults stay.
            with contextlib.suppress(AttributeError, OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._registry._forget(self)


class _Watched(BoundedWrites, ServerConnection):
    """The fallback (public API only): registered when made, forgotten once websockets says
    the connection is closed (``wait_closed()``); the system's buffer sizes."""

    def __init__(self, registry: Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall_watch = registry.stall_watch
        registry.all.add(self)
        registry.tasks.spawn(self._forget_when_closed(registry), name="connection-watch")

    async def _forget_when_closed(self, registry: Connections) -> None:
        try:
            await self.wait_closed()
        finally:
            registry._forget(self)


# -- failing safe: the internals above, checked at import ----------------------------------


def missing_internals() -> list[str]:
    """The websockets internals :class:`_Tracked` relies on that this websockets lacks."""
    missing: list[str] = []
    if not issubclass(ServerConnection, asyncio.Protocol):
        missing.append("ServerConnection as the asyncio protocol")
    for name, sets in (("connection_made", "transport"), ("connection_lost", None)):
        # websockets' own method, which the override extends with super().
        method = next((vars(c)[name] for c in Connection.__mro__ if name in vars(c)), None)
        owner = getattr(method, "__qualname__", "").split(".")[0]
        if owner != Connection.__name__:
            missing.append(f"Connection.{name}()")
        elif sets is not None and not assigned_in(Connection, name, sets):
            missing.append(f"Connection.{sets} (set in {name})")
    return missing


# What the fallback does instead, for its one WARNING.
FALLBACK_DOES = (
    "connections are forgotten through wait_closed() instead, with the system's socket buffer sizes"
)


def _select(missing: list[str]) -> str:
    """``"asyncio callbacks"``, or ``"wait_closed"`` (with one WARNING) if any is missing."""
    return choose(
        missing, "asyncio callbacks", "wait_closed", logger, "connections.py", FALLBACK_DOES
    )


IMPLEMENTATION = _select(missing_internals())
