"""How far behind is a client? The bytes written to its connection and not yet sent.

``websockets.broadcast()`` writes without waiting, so a client that does not read lets
these grow. The ball skips such a client (it only needs the latest state); the chat
disconnects it (every message matters, and it cannot keep up)::

    if unsent_bytes(websocket) > limit: ...
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection

__all__ = ["unsent_bytes"]


def unsent_bytes(connection: ServerConnection) -> int:
    """Bytes waiting in the connection's transport (0 once it is gone)."""
    transport = connection.transport
    return transport.get_write_buffer_size() if transport is not None else 0
