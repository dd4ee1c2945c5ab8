"""How far behind is a client? The bytes written to its connection and not yet sent.

``websockets.broadcast()`` (and ``fanout.fanout()``) write without waiting, so a client that
does not read lets these grow. The ball skips such a client (it only needs the latest
state); the chat disconnects it (every message matters, and it cannot keep up); both through
``fanout(..., backlog_limit=...)``, which reads this figure in its pass over the clients::

    if unsent_bytes(websocket) > limit: ...
"""

from __future__ import annotations

import logging
import socket

from websockets.asyncio.server import ServerConnection

__all__ = ["limit_send_buffer", "unsent_bytes"]

logger = logging.getLogger("workshop_lib.wire.backlog")


def unsent_bytes(connection: ServerConnection) -> int:
    """Bytes waiting in the connection's transport (0 once it is gone)."""
    transport = connection.transport
    return transport.get_write_buffer_size() if transport is not None else 0


def limit_send_buffer(connection: ServerConnection, size: int) -> None:
    """Cap the kernel's send buffer (SO_SNDBUF) for this connection.

    Without it Linux lets a socket's buffer grow to megabytes, which hides a slow client
    behind a long queue the server cannot see: stale frames for the ball, and a late
    "too slow" verdict for the chat.
    """
    sock = connection.transport.get_extra_info("socket") if connection.transport else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError as exc:  # not fatal: only the kernel's queue stays larger
            logger.debug("could not set SO_SNDBUF: %s", exc)
