"""Serialize once, write to many: ``websockets.broadcast()`` without the per-connection framing.

    result = fanout(connections, frame_text, backlog_limit=8 * 1024)
    result.sent, result.written, result.behind     # connections, bytes, the skipped laggards

``websockets.broadcast()`` frames the message once *per connection*: for each one it builds a
``Frame``, serializes it (header, payload, extensions) and flushes the protocol's output list
to the transport. That is right in general, because each connection can have its own
extensions (permessage-deflate keeps a compression context per connection) and a client
must mask every frame with a fresh key. But a server frame sent with no extension is never
masked (RFC 6455, 5.1) and depends on nothing but the message, so its bytes are the same
for every such connection. :func:`fanout` builds them once and hands them to each
connection's transport: what is left per connection is the checks below and the
``send()`` system call. py-spy on ``bench/ball_fanout.py`` put websockets' per-connection
framing at about a quarter of the server's time at 300 clients (``docs/architecture.md``,
"Fan-out").

Per connection, the same checks as ``broadcast()`` in ``websockets/asyncio/connection.py``
(websockets 17), in the same order, plus two of ours:

1. ``connection.protocol.state is OPEN``, else skipped silently (a closing handshake is in
   progress: no data frame may follow a close frame);
2. ``connection.send_in_progress is None``, else skipped with websockets' own warning
   ("skipped broadcast: sending a fragmented message"): a frame written now would land in
   the middle of a fragmented message;
3. ours: the transport is not closing (the TCP side can be lost before websockets' state
   changes; writing then makes asyncio log "socket.send() raised exception." per write);
4. ours, optional: at most ``backlog_limit`` bytes wait unsent in the transport, else the
   connection is skipped and returned in ``behind`` (the ball conflates, the chat closes it).

Then the precomputed bytes are written, *unless* this connection needs websockets' own
framing: it negotiated an extension (permessage-deflate: the compressed bytes differ per
connection), it is a client connection (frames must be masked), its protocol logs frames
(``debug``: the log line would be lost), it is midway through a fragmented message, or its
protocol holds output not yet flushed (the order of frames must not change). Those get
the two calls ``broadcast()`` makes (``protocol.send_text()`` or ``send_binary()``, then
``connection.send_data()``), so correctness never depends on the server having compression
off. Write errors are logged as ``broadcast()`` logs them and the loop goes on.

What this does not do: it sends whole messages only (no fragmentation, as ``broadcast()``),
and it leaves the frame's payload as it is (text must be valid UTF-8: a ``str`` always is).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, State

__all__ = ["FanoutResult", "fanout", "serialize"]

OPEN = State.OPEN


@dataclass(slots=True)
class FanoutResult:
    """What one :func:`fanout` call did."""

    sent: int = 0  # connections the message was written to
    written: int = 0  # bytes handed to their transports (frame headers included)
    behind: list[Connection] = field(default_factory=list)  # skipped: over backlog_limit


def serialize(message: str | bytes) -> tuple[bytes, bytes, bool]:
    """``(payload, frame, text)``: the message as bytes, its unmasked frame, text or binary."""
    text = isinstance(message, str)
    payload = message.encode() if isinstance(message, str) else bytes(message)
    frame = Frame(Opcode.TEXT if text else Opcode.BINARY, payload)
    return payload, frame.serialize(mask=False, extensions=[]), text


def fanout(
    connections: Iterable[Connection],
    message: str | bytes,
    *,
    backlog_limit: int | None = None,
) -> FanoutResult:
    """Write ``message`` (``str``: a text frame, bytes: binary) to every open connection.

    Like ``websockets.broadcast()``: synchronous, no backpressure, failures logged and
    skipped. Connections whose transport holds more than ``backlog_limit`` unsent bytes are
    not written to and are returned in ``result.behind``.
    """
    payload, frame, text = serialize(message)
    size = len(frame)
    result = FanoutResult()
    behind = result.behind
    sent = written = 0
    for connection in connections:
        protocol = connection.protocol
        if protocol.state is not OPEN:
            continue
        if connection.send_in_progress is not None:
            connection.logger.warning("skipped broadcast: sending a fragmented message")
            continue
        transport = connection.transport
        if transport.is_closing():
            continue
        if backlog_limit is not None and transport.get_write_buffer_size() > backlog_limit:
            behind.append(connection)
            continue
        try:
            if (
                protocol.extensions
                or protocol.side is not SERVER
                or protocol.debug
                or protocol.expect_continuation_frame
                or protocol.writes
            ):
                # websockets frames it for this connection: broadcast()'s two calls.
                (protocol.send_text if text else protocol.send_binary)(payload)
                written += len(protocol.writes[-1])  # the frame just serialized
                connection.send_data()
            else:
                transport.write(frame)
                written += size
        except Exception as exc:  # what broadcast() logs, word for word
            connection.logger.warning(
                "skipped broadcast: failed to write message: %s",
                traceback.format_exception_only(exc)[0].strip(),
            )
            continue
        sent += 1
    result.sent, result.written = sent, written
    return result
