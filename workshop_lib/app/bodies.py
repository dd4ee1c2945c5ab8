"""A bounded request body for the few HTTP routes that take one, on websockets' own parser.

websockets parses HTTP for its handshake, which has no body: ``Request.parse`` refuses any
``Content-Length`` but 0 (the connection is dropped with no answer). The official SDK's
``client.realtime.client_secrets.create()`` POSTs JSON, so the Realtime lesson's
``client_secrets`` routes need a body. Two ways were open: a second, tiny HTTP server (h11)
on a port of its own, or this. This is chosen because it keeps one port: the same address
for the SDK's ``base_url`` and ``websocket_base_url`` (a hub's proxy, a room's firewall and
``serve``'s printed address need nothing new), and the same guard, connection limits and
logs as every other route. Its price is reading websockets internals, checked at import.

How: each connection's ``StreamReader`` is replaced (before any byte arrives) by one whose
``read_line`` watches the request's head. For a method and path that ``limit`` allows a
body (a :class:`~workshop_lib.lesson.Post` route), it keeps the ``Content-Length`` line
from websockets' parser and, at the blank line that ends the head, reads that many bytes
into :func:`body_of`'s answer; a body over the limit is not read at all, and the route
answers 413. Every other request reaches websockets untouched::

    install(protocol, limit)           # in create_connection, before the first byte
    body = body_of(protocol)           # in process_request: b"", the body, or TooLarge

If an internal it reads is missing (a websockets release renamed it), one WARNING is
logged and :func:`install` does nothing: POSTs with a body are then dropped by websockets
as before, and empty ones still work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass

import websockets
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

__all__ = ["AVAILABLE", "TooLarge", "body_of", "install", "missing_internals"]

logger = logging.getLogger("workshop_lib.app.bodies")

Limit = Callable[[str, str], int | None]
"""``limit(method, path)``: the largest body a request may carry, or None: no body here."""


@dataclass(frozen=True)
class TooLarge:
    """A body that was not read: it was ``length`` bytes, over the route's ``limit``."""

    length: int
    limit: int


def missing_internals() -> list[str]:
    """The websockets internals :func:`install` relies on that this websockets lacks."""
    missing = []
    init = getattr(getattr(Protocol, "__init__", None), "__code__", None)
    if init is None or not {"reader", "parser", "parse"} <= set(init.co_names):
        missing.append("Protocol.reader/parser (set in __init__)")
    parse = getattr(getattr(ServerProtocol, "parse", None), "__code__", None)
    if parse is None or not {"reader", "read_line"} <= set(parse.co_names):
        missing.append("ServerProtocol.parse reading self.reader.read_line")
    for name in ("read_line", "read_exact", "feed_data"):
        if not callable(getattr(StreamReader, name, None)):
            missing.append(f"StreamReader.{name}")
    return missing


def _available() -> bool:
    missing = missing_internals()
    if missing:
        logger.warning(
            "websockets %s lacks internals bodies.py uses (%s): POST routes take no body "
            "(the SDK's client_secrets.create() cannot reach the local server)",
            websockets.__version__,
            ", ".join(missing),
        )
    return not missing


AVAILABLE = _available()


class _BodyReader(StreamReader):
    """websockets' reader, which also reads the body of a request that may have one."""

    def __init__(self, limit: Limit) -> None:
        super().__init__()
        self._limit = limit
        self._allowed: int | None = None  # bytes of body this request may carry
        self._length: int | None = None
        self._head = 0  # lines of the request's head read so far; -1: the head is over
        self.body: bytes | TooLarge = b""

    def read_line(
        self, m: int, too_long_exc_type: type[Exception] = RuntimeError
    ) -> Generator[None, None, bytearray]:
        while True:
            line = yield from super().read_line(m, too_long_exc_type)
            if self._head < 0:  # the frames of a WebSocket, or nothing: not ours
                return line
            self._head += 1
            if self._head == 1:  # the request line: METHOD PATH VERSION
                method, _, rest = bytes(line).partition(b" ")
                path = rest.partition(b" ")[0].partition(b"?")[0]
                self._allowed = self._limit(
                    method.decode("ascii", "replace"), path.decode("ascii", "replace")
                )
                return line
            if line in (b"\r\n", b"\n"):  # the end of the head
                self._head = -1
                if self._length:
                    assert self._allowed is not None
                    if self._length > self._allowed:
                        self.body = TooLarge(self._length, self._allowed)
                    else:
                        self.body = bytes((yield from self.read_exact(self._length)))
                return line
            if self._allowed is None or not _is_content_length(line):
                return line
            # As websockets treats a request it cannot read: the connection is dropped.
            if self._length is not None:
                raise ValueError("more than one Content-Length header")
            self._length = _length(line)  # the line goes no further: read the next one


def _is_content_length(line: bytearray) -> bool:
    return bytes(line[:15]).lower() == b"content-length:"


def _length(line: bytearray) -> int:
    value = bytes(line[15:]).strip()
    if not value.isdigit() or len(value) > 12:
        raise ValueError(f"invalid Content-Length: {value[:20]!r}")
    return int(value)


def install(protocol: ServerProtocol, limit: Limit) -> ServerProtocol:
    """Let ``protocol`` read the body of a request ``limit`` allows one; returns it.

    Call it before the connection receives its first byte (websockets' ``create_connection``
    hook). The parser websockets started is restarted on the new reader: it had read nothing.
    """
    if AVAILABLE and not protocol.reader.buffer and not protocol.events:
        old = protocol.parser
        protocol.reader = _BodyReader(limit)
        protocol.parser = protocol.parse()
        next(protocol.parser)
        old.close()
    return protocol


def body_of(protocol: ServerProtocol) -> bytes | TooLarge:
    """The body the request on ``protocol`` carried (``b""``: none, or none read)."""
    reader = protocol.reader
    return reader.body if isinstance(reader, _BodyReader) else b""
