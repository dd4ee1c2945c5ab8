"""Cheap WebSocket readers: a thousand connections in one process, none a full asyncio client.

    class Ticks(Reader):
        def on_message(self, payload: bytes, now: float) -> None:   # every data frame
            ...
    readers = await open_readers(Ticks, ["ws://127.0.0.1:8001/ball"], count=500)

websockets' asyncio client costs about 40 µs of CPU per frame received (a task, a queue, a
UTF-8 decode and a wake-up per message); 1,000 ball clients at 60 Hz would need more cores
than this machine has, beside the servers they measure. A :class:`Reader` is one
``asyncio.Protocol`` per connection: the HTTP upgrade is built and checked by websockets'
Sans-I/O ``ClientProtocol`` (so the handshake is websockets' own), and after it the reader
parses the server's frames itself from the raw bytes of each read (:class:`FrameParser`):
a server's frames are never masked (RFC 6455, 5.1), so a frame is a FIN/opcode byte, a
7-, 16- or 64-bit length and the payload. Pings are answered with a masked pong (websockets
closes a peer that does not, after 20 s + 20 s), a close frame is echoed and the socket
closed. Data frames go to :meth:`Reader.on_message` as ``bytes`` with the read's
``time.time()``, all frames of one read with the same time (they arrived together).

What it does not do: permessage-deflate (it offers no extension, so the server sends plain
frames), and fragmented messages (the workshop server sends none; a continuation frame is
counted in ``Reader.errors`` and the connection failed with 1002, as a bug to see).
``tests/test_bench_readers.py`` checks :class:`FrameParser` against websockets' own frame
reader, so the figures built on it are honest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from websockets.client import ClientProtocol
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["FrameParser", "ProtocolError", "Reader", "masked", "open_readers", "run_fast"]

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 1, 2, 8, 9, 10, 0


class ProtocolError(Exception):
    """The server sent something a server must not (a masked frame, a bad length)."""


def masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame (FIN set, masked with a fresh key), serialized by websockets."""
    return Frame(Opcode(opcode), payload).serialize(mask=True, extensions=[])


class FrameParser:
    """Splits a server's byte stream into ``(opcode, fin, payload)`` frames.

    ``feed(data)`` returns the frames completed by ``data``; a partial frame waits in
    ``rest`` for the next read. The loop reads header bytes by index and slices the payload
    once: no Frame object, no per-frame allocation beyond the payload itself.
    """

    __slots__ = ("max_size", "rest")

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.rest = b""
        self.max_size = max_size

    def feed(self, data: bytes) -> list[tuple[int, bool, bytes]]:
        if self.rest:
            data = self.rest + data
        frames: list[tuple[int, bool, bytes]] = []
        i, n = 0, len(data)
        while n - i >= 2:
            b0, b1 = data[i], data[i + 1]
            if b1 & 0x80:
                raise ProtocolError("a masked frame from the server (RFC 6455, 5.1)")
            if b0 & 0x70:
                raise ProtocolError("reserved bits set without an extension")
            length = b1  # the mask bit is 0, so b1 is the 7-bit length
            head = 2
            if length == 126:
                if n - i < 4:
                    break
                length = (data[i + 2] << 8) | data[i + 3]
                head = 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                head = 10
            if length > self.max_size:
                raise ProtocolError(f"a {length}-byte frame (limit {self.max_size})")
            end = i + head + length
            if end > n:
                break
            frames.append((b0 & 0x0F, bool(b0 & 0x80), data[i + head : end]))
            i = end
        self.rest = data[i:] if i < n else b""
        return frames


class Reader(asyncio.Protocol):
    """One WebSocket connection, read cheaply; subclass and override :meth:`on_message`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.handshake = ClientProtocol(parse_uri(url))  # offers no extension
        self.parser = FrameParser()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None  # the server's close code, once it sent one
        self.errors = 0  # protocol errors seen (each fails the connection)
        self._head = b""  # the HTTP response until its blank line
        self._open = False

    # -- what a subclass fills in ------------------------------------------------------------

    def on_open(self) -> None:
        """Called once the server accepted the upgrade."""

    def on_message(self, payload: bytes, now: float) -> None:
        """Called for every text or binary frame, with its read's ``time.time()``."""

    # -- sending -----------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Send one masked text frame."""
        assert self.transport is not None
        self.transport.write(masked(TEXT, text.encode()))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE) -> None:
        """Start the closing handshake (the server answers and closes the TCP side)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked(CLOSE, Close(code, "").serialize()))

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no check.
        self.transport = transport  # type: ignore[assignment]
        request = self.handshake.connect()
        self.handshake.send_request(request)
        for data in self.handshake.data_to_send():
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        # The common read: exactly one whole unfragmented text or binary frame of under 64 KiB
        # (a ball state, a chat message), handed on without the parser's loop.
        if self._open and not self.parser.rest and len(data) > 2:
            b0, length = data[0], data[1]
            if b0 in (0x81, 0x82):  # FIN, no reserved bit, text or binary
                if length < 126:
                    if len(data) == length + 2:
                        self.on_message(data[2:], now)
                        return
                elif length == 126 and len(data) > 4 and len(data) == (data[2] << 8 | data[3]) + 4:
                    self.on_message(data[4:], now)
                    return
        if not self._open:
            data = self._upgrade(data)
            if not data:
                return
        try:
            frames = self.parser.feed(data)
        except ProtocolError:
            self._fail()
            return
        on_message = self.on_message
        for opcode, fin, payload in frames:
            if (opcode in (TEXT, BINARY)) and fin:
                on_message(payload, now)
            elif opcode == PING:
                self.transport.write(masked(PONG, payload))  # type: ignore[union-attr]
            elif opcode == CLOSE:
                self.close_code = Close.parse(payload).code if payload else CloseCode.NO_STATUS_RCVD
                self.transport.write(masked(CLOSE, payload))  # type: ignore[union-attr]
                self.transport.close()  # type: ignore[union-attr]
                return
            elif opcode != PONG:
                self._fail()  # a fragment or an unknown opcode: not what these servers send
                return

    def _upgrade(self, data: bytes) -> bytes:
        """Feed the HTTP response to websockets' handshake; return the bytes after it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self._head[: end + 4], self._head[end + 4 :]
        self._head = b""
        self.handshake.receive_data(head)
        events = self.handshake.events_received()
        response = events[0] if events else None
        if self.handshake.state is not State.OPEN or not isinstance(response, Response):
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            error = self.handshake.handshake_exc or ConnectionError(f"no upgrade: {status}")
            if not self.opened.done():
                self.opened.set_exception(error)
            self.transport.close()  # type: ignore[union-attr]
            return b""
        self._open = True
        self.opened.set_result(None)
        self.on_open()
        return rest

    def _fail(self) -> None:
        self.errors += 1
        self.close(CloseCode.PROTOCOL_ERROR)
        self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)


R = TypeVar("R", bound=Reader)


async def open_readers(
    factory: Callable[[str], R],
    urls: Sequence[str],
    count: int,
    *,
    at_once: int = 50,
    timeout: float = 60.0,
    **kwargs: Any,
) -> list[R]:
    """Open ``count`` readers, round-robin over ``urls``, ``at_once`` handshakes in flight.

    Raises if any fails to open within ``timeout``: a benchmark with fewer clients than it
    says would report figures for a smaller load.
    """
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(at_once)
    readers: list[R] = [None] * count  # type: ignore[list-item]

    async def one(i: int) -> None:
        url = urls[i % len(urls)]
        target = parse_uri(url)
        async with gate:
            _, reader = await loop.create_connection(
                lambda: factory(url, **kwargs), target.host, target.port
            )
            await reader.opened
        readers[i] = reader

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(one(i) for i in range(count)))
    return readers


def run_fast(main: Any) -> Any:
    """Run the coroutine ``main`` to its end on uvloop where installed (the readers' child
    processes: each frame read costs less), else on asyncio's loop."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
