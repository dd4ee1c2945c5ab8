"""Serialize once, write to many: ``websockets.broadcast()`` without the per-connection framing.

    result = fanout(connections, frame_text, backlog_limit=8 * 1024)
    result.sent, result.written, result.behind     # connections, bytes, the skipped laggards
    fanout(members, *texts)                        # several messages: one write each

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

Several messages in one call (``fanout(connections, first, second, ...)``) go out as their
frames back to back in **one** ``transport.write()`` per connection: one ``send()`` system
call instead of one per message, which is most of what a delivery costs (see above). The
room on Redis (lesson 06) passes what one stream read returned: nothing waits to be
batched, but a process that fell behind catches up in fewer, larger writes instead of
falling further behind. Each message is still its own frame; the reader sees no difference.

What this does not do: it sends whole messages only (no fragmentation, as ``broadcast()``),
and it leaves the frame's payload as it is (text must be valid UTF-8: a ``str`` always is).

It fails safe. All of the above reads websockets internals (``Connection.protocol``,
``.send_in_progress``, ``.transport``, ``.send_data()``, the protocol's ``writes`` and
friends, ``Frame.serialize()``), which a websockets release may rename. At import,
:func:`missing_internals` checks that they are all there; if one is not, one WARNING is
logged and :func:`fanout` calls a fallback with the same signature and result that does the
checks with public API and sends with ``websockets.broadcast()``: slower, still correct.
:data:`IMPLEMENTATION` says which one is in use (``"direct"`` or ``"broadcast"``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, State
from websockets.server import ServerProtocol

from .internals import assigned_in, choose

__all__ = ["IMPLEMENTATION", "FanoutResult", "fanout", "missing_internals", "serialize"]

logger = logging.getLogger("workshop_lib.wire.fanout")

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


def _direct_fanout(
    connections: Iterable[Connection],
    *messages: str | bytes,
    backlog_limit: int | None = None,
) -> FanoutResult:
    """Write each of ``messages`` (``str``: a text frame, bytes: binary) to every open
    connection, in order, in one write per connection.

    Like ``websockets.broadcast()``: synchronous, no backpressure, failures logged and
    skipped. Connections whose transport holds more than ``backlog_limit`` unsent bytes are
    not written to and are returned in ``result.behind``.
    """
    serialized = [serialize(message) for message in messages]
    frames = b"".join(frame for _, frame, _ in serialized)
    size = len(frames)
    result = FanoutResult()
    if not serialized:
        return result
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
                for payload, _, text in serialized:
                    (protocol.send_text if text else protocol.send_binary)(payload)
                    written += len(protocol.writes[-1])  # the frame just serialized
                connection.send_data()
            else:
                transport.write(frames)
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


# -- failing safe: the internals above, checked at import ----------------------------------

# Read on the Sans-I/O protocol of every connection (checked on a ServerProtocol()).
PROTOCOL_ATTRIBUTES = (
    "state",
    "extensions",
    "side",
    "debug",
    "expect_continuation_frame",
    "writes",
    "send_text",
    "send_binary",
)
# Instance attributes of the asyncio Connection, and the method that sets each of them (a
# Connection needs a running loop, so the check reads the names its code assigns).
CONNECTION_ATTRIBUTES = {
    "protocol": "__init__",
    "send_in_progress": "__init__",
    "logger": "__init__",
    "transport": "connection_made",
}
CONNECTION_METHODS = ("send_data",)


def missing_internals() -> list[str]:
    """The websockets internals :func:`fanout` reads that this websockets lacks ([] if none)."""
    missing: list[str] = []
    try:
        protocol = ServerProtocol()
    except Exception as exc:
        missing.append(f"ServerProtocol() ({exc!r})")
    else:
        missing += [
            f"ServerProtocol.{name}" for name in PROTOCOL_ATTRIBUTES if not hasattr(protocol, name)
        ]
    missing += [
        f"Connection.{name}()"
        for name in CONNECTION_METHODS
        if not callable(getattr(Connection, name, None))
    ]
    for name, method in CONNECTION_ATTRIBUTES.items():
        if not assigned_in(Connection, method, name):
            missing.append(f"Connection.{name} (set in {method})")
    try:
        serialized = Frame(Opcode.TEXT, b"ok").serialize(mask=False, extensions=[])
    except Exception as exc:
        missing.append(f"Frame.serialize(mask=, extensions=) ({exc!r})")
    else:
        if serialized != b"\x81\x02ok":
            missing.append(f"Frame.serialize(mask=, extensions=) (got {serialized!r})")
    return missing


def _frame_size(length: int, masked: bool) -> int:
    """Bytes of an uncompressed frame with a ``length``-byte payload (RFC 6455, 5.2)."""
    header = 2 if length < 126 else 4 if length < 65536 else 10
    return header + (4 if masked else 0) + length


def _broadcast_fanout(
    connections: Iterable[Connection],
    *messages: str | bytes,
    backlog_limit: int | None = None,
) -> FanoutResult:
    """:func:`fanout` with public API and ``websockets.broadcast()``: same checks, same result
    (but one ``broadcast()``, so one write per connection, for each message).

    ``written`` counts each frame as serialized without compression (header and payload,
    plus the mask key on client connections): with permessage-deflate fewer bytes go out.
    """
    sizes = [len(m.encode()) if isinstance(m, str) else len(bytes(m)) for m in messages]
    result = FanoutResult()
    ready: list[Connection] = []
    written = 0
    for connection in connections:
        if connection.state is not OPEN:
            continue
        transport = getattr(connection, "transport", None)
        if transport is not None:
            if transport.is_closing():
                continue
            if backlog_limit is not None and transport.get_write_buffer_size() > backlog_limit:
                result.behind.append(connection)
                continue
        ready.append(connection)
        masked = isinstance(connection, ClientConnection)
        written += sum(_frame_size(size, masked) for size in sizes)
    if not ready or not messages:
        return result
    failed = 0  # the most connections one message failed on
    for message, size in zip(messages, sizes, strict=True):
        failures: tuple[BaseException, ...] = ()
        try:
            websockets.broadcast(ready, message, raise_exceptions=True)
        except ExceptionGroup as group:  # broadcast() went on with the others, as fanout() does
            failures = group.exceptions
        for failure in failures:  # what broadcast() logs when it does not raise
            cause = failure.__cause__
            if cause is None:  # "sending a fragmented message"
                logger.warning("skipped broadcast: %s", failure)
            else:
                logger.warning(
                    "skipped broadcast: failed to write message: %s",
                    traceback.format_exception_only(cause)[0].strip(),
                )
        # Which connections failed is not reported: each one counts as an unmasked frame.
        written -= len(failures) * _frame_size(size, False)
        failed = max(failed, len(failures))
    result.sent = len(ready) - failed
    result.written = written
    return result


Fanout = Callable[..., FanoutResult]


FALLBACK_DOES = "fanout falls back to websockets.broadcast() (slower, still correct)"


def _select(missing: list[str]) -> tuple[str, Fanout]:
    """``(IMPLEMENTATION, fanout)`` given :func:`missing_internals`'s answer; warns if any."""
    direct, fallback = ("direct", _direct_fanout), ("broadcast", _broadcast_fanout)
    return choose(missing, direct, fallback, logger, "fanout()", FALLBACK_DOES)


IMPLEMENTATION, _fanout = _select(missing_internals())


def fanout(
    connections: Iterable[Connection],
    *messages: str | bytes,
    backlog_limit: int | None = None,
) -> FanoutResult:
    """Write each of ``messages`` (``str``: a text frame, bytes: binary) to every open
    connection, in order, in one write per connection; see the module.

    Like ``websockets.broadcast()``: synchronous, no backpressure, failures logged and
    skipped. Connections whose transport holds more than ``backlog_limit`` unsent bytes are
    not written to and are returned in ``result.behind``. Done by the direct implementation,
    or by the fallback on ``broadcast()`` (:data:`IMPLEMENTATION`).
    """
    return _fanout(connections, *messages, backlog_limit=backlog_limit)
