"""Chat under load: many members in one room, each posting once a second, every message checked.

    python bench/chat_load.py                    # 200 clients, 1 message/s each, 30 s (~50 s)
    python bench/chat_load.py --quick            # 50 clients, 5 s
    python bench/chat_load.py --clients 100 --seconds 10 --rate 2
    python bench/chat_load.py --compression none --client websockets

The workshop server runs in a child process of this script (``--serve 0``); this process is
the client: one asyncio loop holding every connection, negotiating permessage-deflate as
websockets and browsers do (``--compression none`` to offer nothing). By default it reads with
a lean frame reader of its own (see ``LightClient``), which adds less CPU and delay than
websockets' asyncio client (``--client websockets``). Every client joins ``/chat`` with a name of
its own (``c0``, ``c1``, ...), and only once all of them are in the room and have seen the
last one's ``chat.joined`` does anyone post: so every client should receive every message.
Then each client sends ``--rate`` messages a second for ``--seconds`` seconds, on a fixed
schedule, the clients' start times spread evenly over the first period (one second at the
default rate). A message's text says who sent it, its number and when: ``"c17 #12
1795000000.123456"``. Every client records every ``chat.message`` it receives and when.

Reported: messages sent and posted; per client, messages received, missing, duplicated;
whether every client saw the same sequence of ids and whether it only grows; the delivery
latency (client's receive time minus the send time in the text), split at the server's ``ts``
into the way up (send to ``ts``) and the way down (``ts`` to receive; all three clocks are
this machine's wall clock); the server's and this process's CPU over the sending window
(100 % = one core) and how long each waited for a CPU (run queue: other work on the
machine), the server's event-loop lag, the client's own event-loop lag and how late its
sends left (if these are large, the client was the bottleneck, not the server); and every
``error`` event, close code and disconnect. Goals: nothing lost, one order for everyone,
ids strictly increasing, p99 delivery ≤ 50 ms, no ``rate_limited`` errors, no disconnects.

Linux only (CPU time comes from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import os
import statistics
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from _common import (
    HOST,
    Child,
    check_health,
    child,
    cpu_seconds,
    percentile,
    print_header,
    raise_fd_limit,
    run_main,
    run_queue_seconds,
    wait_for_port,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    enable_client_permessage_deflate,
)
from websockets.http11 import Response
from websockets.protocol import OPEN
from websockets.uri import parse_uri

LATENCY_GOAL = 0.050  # s, p99 of send -> receive
CONNECT_AT_ONCE = 25  # handshakes (and joins) in flight while connecting
CLOSE_TIMEOUT = 2.0  # s to wait for the server's closing frame at the end (it may be behind)
LAG_PERIOD = 0.005  # s between two wake-ups of the event-loop lag probes
JOINED_PREFIX = b'{"type":"chat.joined"'  # the server's compact JSON (workshop_lib.wire.protocol)
MESSAGE_PREFIX = b'{"type":"chat.message"'
READ_BUFFER = 256 * 1024  # the light client's receive buffer (asyncio reads up to this)


# -- the server, in a child process ------------------------------------------------------------


async def _probe_lag(samples: list[tuple[float, float]]) -> None:
    """Sleep LAG_PERIOD again and again; record (wall time, how late the wake-up was)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_PERIOD
        await asyncio.sleep(LAG_PERIOD)
        samples.append((time.time(), loop.time() - due))


class _CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


LOST_WRITE = "socket.send() raised exception."


class _CountLostWrites(logging.Filter):
    """asyncio logs LOST_WRITE for each write to a connection already lost: count, don't print.

    Everything else asyncio logs goes through as usual.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == LOST_WRITE:
            self.count += 1
            return False
        return True


def _count_lost_writes() -> _CountLostWrites:
    counter = _CountLostWrites()
    logging.getLogger("asyncio").addFilter(counter)
    return counter


def serve(port: int) -> None:
    """Run the workshop server until stdin closes; then print ``STATS {...}`` and stop.

    A line ``WINDOW <start> <end>`` on stdin (wall-clock times) limits the loop-lag figures
    to the sending window.
    """
    from workshop_lib import start_server

    warnings = _CountWarnings()
    logging.getLogger("workshop_lib").addHandler(warnings)
    lost_writes = _count_lost_writes()
    server = start_server(port=port, name="bench-chat")
    lags: list[tuple[float, float]] = []
    probe = server.submit(_probe_lag(lags))
    window = (0.0, float("inf"))
    try:
        print(f"PORT {server.port}", flush=True)
        for line in sys.stdin:  # until EOF
            if line.startswith("WINDOW "):
                window = (float(line.split()[1]), float(line.split()[2]))
        probe.cancel()
        in_window = [lag for t, lag in lags if window[0] <= t <= window[1]] or [0.0]

        # Read from this thread rather than wait for a turn on a loop that may be far behind:
        # a deque's last item and a dict's length are safe to read while the loop runs.
        chat = server.lesson("chat")
        history = chat.room.history
        stats = {
            "members": len(chat.members),
            "last_id": history[-1]["id"] if history else 0,
            "lag_p50": percentile(in_window, 0.50),
            "lag_p99": percentile(in_window, 0.99),
            "lag_max": max(in_window),
            "warnings": warnings.lines[:20],
            "warning_count": len(warnings.lines),
            "lost_writes": lost_writes.count,
        }
        print(f"STATS {json.dumps(stats)}", flush=True)
    finally:
        try:
            server.stop()
        except TimeoutError as error:
            # Its loop was still working through a backlog; the process ends all the same.
            print(f"server.stop(): {error}", file=sys.stderr)


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Member:
    """One client and everything it received (kept raw: parsed after the run)."""

    index: int
    name: str
    position: int = 0  # the order in which the server let it join (1 = first)
    times: list[float] = field(default_factory=list)  # receive time of each message
    messages: list[str | bytes] = field(default_factory=list)  # the messages, as received
    joined_seen: int = 0
    delivered: int = 0  # chat.message events received
    sent: int = 0
    send_slips: list[float] = field(default_factory=list)  # s late against the schedule
    closed: tuple[int | None, str, float] | None = None  # code, reason, when
    closing: bool = False  # we closed it ourselves, at the end
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # LightClient: raw frames

    def received(self, message: str | bytes, when: float) -> None:
        if self.closing:
            # While the clients leave, the server still posts what it had queued, to the few
            # members it has not yet seen leave: not part of the measurement.
            return
        self.times.append(when)
        self.messages.append(message)
        head = message[:40].encode() if isinstance(message, str) else message[:40]
        if head.startswith(MESSAGE_PREFIX):
            self.delivered += 1
        elif head.startswith(JOINED_PREFIX):
            self.joined_seen += 1

    def unpack(self) -> None:
        """After the run: split the light client's raw chunks into ``times`` and ``messages``."""
        frames = [(when, payload) for when, chunk in self.chunks for payload in _split(chunk)]
        frames += zip(self.times, self.messages, strict=True)  # the slow path's, if any
        frames.sort(key=lambda frame: frame[0])  # stable: a chunk's frames keep their order
        self.times = [when for when, _ in frames]
        self.messages = [payload for _, payload in frames]
        self.chunks = []


def _split(chunk: bytes) -> Iterator[bytes]:
    """The payloads of the unmasked, unfragmented frames in ``chunk``."""
    at = 0
    while at < len(chunk):
        length, head = chunk[at + 1] & 0x7F, 2
        if length == 126:
            length, head = int.from_bytes(chunk[at + 2 : at + 4], "big"), 4
        elif length == 127:
            length, head = int.from_bytes(chunk[at + 2 : at + 10], "big"), 10
        yield chunk[at + head : at + head + length]
        at += head + length


class WebsocketsClient:
    """websockets' own asyncio client: ``connect()``, ``send()``, ``async for``."""

    def __init__(self, member: Member, url: str, compression: str | None) -> None:
        self.member, self.url, self.compression = member, url, compression
        self.websocket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None

    async def join(self) -> str:
        """Connect, send ``chat.join``; return the first message (the welcome), as text."""
        self.websocket = await connect(
            self.url, compression=self.compression, open_timeout=30, close_timeout=CLOSE_TIMEOUT
        )
        await self.send(json.dumps({"type": "chat.join", "name": self.member.name}))
        welcome = await self.websocket.recv()
        self.reader = asyncio.create_task(self._read())
        return welcome if isinstance(welcome, str) else welcome.decode()

    async def _read(self) -> None:
        websocket, member, clock = self.websocket, self.member, time.time
        assert websocket is not None
        try:
            async for message in websocket:
                member.received(message, clock())
        except ConnectionClosed:
            pass
        member.closed = (websocket.close_code, websocket.close_reason or "", time.time())

    def extensions(self) -> str:
        response = self.websocket.response if self.websocket else None
        return response.headers.get("Sec-WebSocket-Extensions", "none") if response else "?"

    async def send(self, text: str) -> None:
        assert self.websocket is not None
        await self.websocket.send(text)

    async def close(self) -> None:
        if self.websocket is not None:
            await self.websocket.close()
        if self.reader is not None:
            await self.reader


class LightClient(asyncio.BufferedProtocol):
    """A lean receiver: websockets' Sans-I/O protocol for the handshake and for what it sends,
    and a frame walker of its own for what the server sends.

    websockets' asyncio client costs about as much CPU per message received as the server
    spends sending it (its parser, a queue, a future and a task switch per message). This
    one receives into a buffer of its own (``recv_into``, no allocation per read), walks the
    frame headers, counts the events the run waits for, and keeps each read's complete
    frames as one ``bytes`` with its time: the messages are split out after the run
    (``Member.unpack``). Frames from the server are never masked (RFC 6455, 5.1). Anything
    but a plain unfragmented text frame (pings, the close, compressed or fragmented
    messages) takes the slow path, ``_frame``.
    """

    def __init__(self, member: Member, url: str, compression: str | None) -> None:
        extensions = enable_client_permessage_deflate(None) if compression else None
        self.member = member
        self.protocol = ClientProtocol(parse_uri(url), extensions=extensions)
        self.host, self.port = self.protocol.uri.host, self.protocol.uri.port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray(READ_BUFFER)
        self.view = memoryview(self.buffer)
        self.end = 0  # bytes in the buffer
        self.inflate: Any = None  # a zlib decompressor, once permessage-deflate is agreed
        self.fragments: list[bytes] = []
        self.compressed = False  # the message being reassembled from fragments is
        self.first: asyncio.Future[bytes] | None = None  # the welcome, as the join's answer
        self.opened: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self.response: Response | None = None

    # the connection

    async def join(self) -> str:
        loop = asyncio.get_running_loop()
        self.opened, self.first, self.done = (loop.create_future() for _ in range(3))
        await loop.create_connection(lambda: self, self.host, self.port)
        await asyncio.wait_for(self.opened, 30)
        await self.send(json.dumps({"type": "chat.join", "name": self.member.name}))
        return (await asyncio.wait_for(self.first, 30)).decode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.member.closed is None:
            self.member.closed = (1006, f"connection lost: {exc}", time.time())
        for future in (self.opened, self.first, self.done):
            if future is not None and not future.done():
                future.set_exception(ConnectionError(f"{self.member.name}: connection lost"))
                future.exception()  # retrieved: no "never retrieved" warning if none waits

    def _flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data and self.transport is not None:
            self.transport.write(data)

    def extensions(self) -> str:
        if self.response is None:
            return "?"
        return self.response.headers.get("Sec-WebSocket-Extensions", "none")

    async def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.protocol.state is OPEN:
            self.protocol.send_close(1000)
            self._flush()
        assert self.done is not None
        with suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(asyncio.shield(self.done), CLOSE_TIMEOUT)
        self.transport.close()

    # what the server sends

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buffer) - self.end < READ_BUFFER // 2:  # a large frame: grow
            self.buffer = self.buffer[: self.end] + bytearray(2 * len(self.buffer))
            self.view = memoryview(self.buffer)
        return self.view[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        assert self.opened is not None
        if not self.opened.done():
            data, self.end = bytes(self.buffer[: self.end]), 0
            self._handshake(data)
            return
        buffer, size, at, now = self.buffer, self.end, 0, time.time()
        member = self.member
        fast = self.first is not None and self.first.done() and self.inflate is None
        while size - at >= 2:
            first, length, head = buffer[at], buffer[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 4], "big"), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 10], "big"), 10
            end = at + head + length
            if end > size:
                break
            if first == 0x81 and fast:  # a whole text frame: count it, keep it in the chunk
                if buffer.startswith(MESSAGE_PREFIX, at + head):
                    member.delivered += 1
                elif buffer.startswith(JOINED_PREFIX, at + head):
                    member.joined_seen += 1
            else:
                if at and fast and not member.closing:
                    member.chunks.append((now, bytes(buffer[:at])))
                self._frame(first, bytes(buffer[at + head : end]), now)
                buffer[: size - end] = buffer[end:size]
                size -= end
                at = 0
                fast = self.first is not None and self.first.done() and self.inflate is None
                continue
            at = end
        if at and fast and not member.closing:
            # While the clients leave, the server still posts what it had queued: not kept.
            member.chunks.append((now, bytes(buffer[:at])))
        if at:
            buffer[: size - at] = buffer[at:size]
        self.end = size - at

    def _frame(self, first: int, payload: bytes, now: float) -> None:
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in (0x1, 0x2, 0x0):  # text, binary, continuation
            if opcode:
                self.compressed = bool(first & 0x40)  # RSV1, on the first frame only
            self.fragments.append(payload)
            if not fin:
                return
            message = b"".join(self.fragments)
            self.fragments = []
            if self.compressed:
                message = self.inflate.decompress(message + b"\x00\x00\xff\xff")
            if self.first is not None and not self.first.done():
                self.first.set_result(message)
            else:
                self.member.received(message, now)
        elif opcode == 0x9:  # ping: answer it, or the server closes the connection
            self.protocol.send_pong(payload)
            self._flush()
        elif opcode == 0x8:  # close: note the code, answer if the server began
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if self.member.closed is None:
                reason = payload[2:].decode(errors="replace")
                self.member.closed = (code, reason, time.time())
            if self.protocol.state is OPEN:
                self.protocol.send_close(code if code != 1005 else None)
                self._flush()
            assert self.done is not None and self.transport is not None
            if not self.done.done():
                self.done.set_result(None)
            self.transport.close()

    def _handshake(self, data: bytes) -> None:
        assert self.opened is not None
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        if self.protocol.handshake_exc is not None:
            self.opened.set_exception(self.protocol.handshake_exc)
            return
        if self.protocol.state is not OPEN:
            return
        for extension in self.protocol.extensions:
            if isinstance(extension, PerMessageDeflate):
                # A 15-bit window inflates whatever smaller window the server compresses with.
                self.inflate = zlib.decompressobj(wbits=-15)
        for event in events:
            if not isinstance(event, Response):
                raise RuntimeError("the server sent a frame before the client joined")
            self.response = event
        self.opened.set_result(None)


Client = WebsocketsClient | LightClient
CLIENTS = {"light": LightClient, "websockets": WebsocketsClient}


async def _join(client: Client, member: Member) -> None:
    welcome = json.loads(await client.join())
    if welcome.get("type") != "chat.welcome" or welcome.get("you") != member.name:
        raise RuntimeError(f"{member.name} expected a chat.welcome for itself, got {welcome}")
    member.position = len(welcome["users"])


async def _send(client: Client, member: Member, start: float, count: int, period: float) -> None:
    """Send ``count`` messages on a fixed schedule (loop time), each stamped when it left."""
    loop = asyncio.get_running_loop()
    for seq in range(count):
        due = start + seq * period
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if member.closed is not None:
            return
        member.send_slips.append(loop.time() - due)
        text = f"{member.name} #{seq} {time.time():.6f}"
        try:
            await client.send(json.dumps({"type": "chat.send", "text": text}))
        except ConnectionClosed:
            return
        member.sent += 1


@dataclass
class Run:
    """What happened, raw: the clients, the window, the CPU samples."""

    members: list[Member]
    window: tuple[float, float]  # wall clock, first scheduled send to last one
    server_cpu: float  # s of CPU in the window
    client_cpu: float
    server_cpu_idle: float  # % while the room sat still, before the window
    run_queue: tuple[float, float]  # s the server's and the client's threads waited for a CPU
    per_second: list[tuple[float, float]]  # (server %, client %) for each second
    client_lags: list[float]
    drain: float  # s from the end of the window until every client had every message
    connect_time: float
    lost_writes: _CountLostWrites  # this process's writes to connections already lost


async def _sample_cpu(pid: int, out: list[tuple[float, float]]) -> None:
    me = os.getpid()
    last = (time.monotonic(), cpu_seconds(pid), cpu_seconds(me))
    while True:
        await asyncio.sleep(1.0)
        now = (time.monotonic(), cpu_seconds(pid), cpu_seconds(me))
        wall = now[0] - last[0]
        out.append((100 * (now[1] - last[1]) / wall, 100 * (now[2] - last[2]) / wall))
        last = now


async def run_clients(args: argparse.Namespace, child: Child, port: int) -> Run:
    url = f"ws://{HOST}:{port}/chat"
    compression = None if args.compression == "none" else "deflate"
    members = [Member(i, f"c{i}") for i in range(args.clients)]
    clients: list[Client] = [CLIENTS[args.client](m, url, compression) for m in members]
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def join(client: Client, member: Member) -> None:
        async with gate:
            await _join(client, member)

    lost_writes = _count_lost_writes()
    started = time.monotonic()
    try:
        await asyncio.gather(*(join(c, m) for c, m in zip(clients, members, strict=True)))
        connect_time = time.monotonic() - started
        print(f"{args.clients} clients joined {url} in {connect_time:.1f} s", flush=True)
        print(f"extensions: {clients[0].extensions()}", flush=True)

        # Everyone is in the room: wait until each client has seen the chat.joined of
        # everyone who joined after it (and its own), so the room is quiet when sending starts.
        deadline = time.monotonic() + 30
        while any(m.joined_seen < args.clients - m.position + 1 for m in members):
            if time.monotonic() > deadline:
                raise RuntimeError("some clients never saw every chat.joined")
            await asyncio.sleep(0.05)
        idle_before = (time.monotonic(), cpu_seconds(child.pid))
        await asyncio.sleep(1.0)
        idle = 100 * (cpu_seconds(child.pid) - idle_before[1]) / (time.monotonic() - idle_before[0])

        # The window. A collection in the middle of it would pause this process, and the
        # pause would count as the server's latency: collect now, not during the window.
        period = 1.0 / args.rate
        count = max(1, round(args.seconds * args.rate))
        gc.collect()
        gc.disable()
        lags: list[tuple[float, float]] = []
        per_second: list[tuple[float, float]] = []
        probe = asyncio.create_task(_probe_lag(lags))
        start = loop.time() + 0.2
        wall_start = time.time() + (start - loop.time())
        end = start + (count - 1) * period + period  # the last client's last send, at most
        sampler = asyncio.create_task(_sample_cpu(child.pid, per_second))
        cpu_start = (cpu_seconds(child.pid), cpu_seconds(os.getpid()))
        waits_start = (run_queue_seconds(child.pid), run_queue_seconds(os.getpid()))
        senders = [
            asyncio.create_task(_send(c, m, start + period * i / args.clients, count, period))
            for i, (c, m) in enumerate(zip(clients, members, strict=True))
        ]
        await asyncio.gather(*senders)
        await asyncio.sleep(max(0.0, end - loop.time()))
        cpu_end = (cpu_seconds(child.pid), cpu_seconds(os.getpid()))
        waits_end = (run_queue_seconds(child.pid), run_queue_seconds(os.getpid()))
        wall_end = time.time()
        sampler.cancel()
        probe.cancel()
        child.send(f"WINDOW {wall_start} {wall_end}")

        # Stragglers: wait until every client has every message sent, or --grace is over.
        total = sum(m.sent for m in members)
        grace_end = time.monotonic() + args.grace
        while time.monotonic() < grace_end:
            if all(m.delivered >= total or m.closed for m in members):
                break
            await asyncio.sleep(0.01)
        drain = time.time() - wall_end
        gc.enable()
        window = wall_end - wall_start
        return Run(
            members=members,
            window=(wall_start, wall_end),
            server_cpu=cpu_end[0] - cpu_start[0],
            client_cpu=cpu_end[1] - cpu_start[1],
            server_cpu_idle=idle,
            run_queue=(waits_end[0] - waits_start[0], waits_end[1] - waits_start[1]),
            per_second=per_second,
            client_lags=[lag for t, lag in lags if wall_start <= t <= wall_start + window],
            drain=drain,
            connect_time=connect_time,
            lost_writes=lost_writes,
        )
    finally:
        gc.enable()
        for member in members:
            member.closing = True
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# -- the report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {_ms(percentile(values, 0.5))}  p99 {_ms(percentile(values, 0.99))}  "
        f"max {_ms(max(values))} ms"
    )


def _parse(raw: str | bytes, sent_keys: set[tuple[str, int]]) -> tuple[Any, ...]:
    """("chat.message", id, (sender, number) or None if not ours, sent at, ts), or
    ("error", code), or (type,) for any other event."""
    event = json.loads(raw)
    kind = event.get("type")
    if kind == "error":
        return ("error", event.get("code", "?"))
    if kind != "chat.message":
        return (kind,)
    try:
        name, number, stamp = event["text"].split(" ")
        key: tuple[str, int] | None = (name, int(number.lstrip("#")))
        sent_at = float(stamp)
    except ValueError:
        return ("chat.message", event["id"], None, 0.0, event["ts"])
    if event["from"] != name or key not in sent_keys:
        key = None
    return ("chat.message", event["id"], key, sent_at, event["ts"])


def report(run: Run, stats: dict[str, Any]) -> bool:
    """Parse what every client received, print the figures; True if every goal is met."""
    members = run.members
    for member in members:
        member.unpack()
    sent = sum(m.sent for m in members)
    sent_keys = {(m.name, seq) for m in members for seq in range(m.sent)}
    ids_of: dict[tuple[str, int], int] = {}
    inconsistent = 0
    total_lat: list[float] = []
    up_lat: list[float] = []
    down_lat: list[float] = []
    received: list[int] = []
    missing: list[int] = []
    duplicates = 0
    sequences: Counter[tuple[int, ...]] = Counter()
    not_increasing = 0
    errors: Counter[str] = Counter()
    others: Counter[str] = Counter()
    unexpected: list[str] = []
    in_window = 0  # chat.message deliveries received during the window
    window_start, window_end = run.window
    cache: dict[str | bytes, tuple[Any, ...]] = {}
    for member in members:
        ids: list[int] = []
        keys: set[tuple[str, int]] = set()
        for when, raw in zip(member.times, member.messages, strict=True):
            # Every member receives the very same bytes: decode each message once.
            parsed = cache.get(raw)
            if parsed is None:
                parsed = cache[raw] = _parse(raw, sent_keys)
            if parsed[0] == "error":
                errors[parsed[1]] += 1
                continue
            if parsed[0] != "chat.message":
                others[parsed[0]] += 1
                continue
            _, message_id, key, sent_at, ts = parsed
            if key is None:
                unexpected.append(str(raw))
                continue
            if ids_of.setdefault(key, message_id) != message_id:
                inconsistent += 1
            if key in keys:
                duplicates += 1
            keys.add(key)
            ids.append(message_id)
            in_window += window_start <= when <= window_end
            total_lat.append(when - sent_at)
            up_lat.append(ts - sent_at)
            down_lat.append(when - ts)
        received.append(len(keys))
        missing.append(len(sent_keys - keys))
        sequences[tuple(ids)] += 1
        not_increasing += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
        if member.closed is not None and not member.closing:
            code, reason, when = member.closed
            unexpected.append(
                f"{member.name} disconnected {when - run.window[0]:+.1f} s into the window: "
                f"code {code} {reason!r}"
            )

    window = run.window[1] - run.window[0]
    posted = len(ids_of)
    lost = sum(missing)
    same_order = len(sequences) == 1
    all_ids = sorted(ids_of.values())
    contiguous = all_ids == list(range(all_ids[0], all_ids[0] + len(all_ids))) if all_ids else True
    p99 = percentile(total_lat, 0.99) if total_lat else float("inf")
    server_cpu = 100 * run.server_cpu / window
    client_cpu = 100 * run.client_cpu / window

    print()
    print(f"window {window:.1f} s; stragglers waited for {run.drain:.2f} s after it")
    print(
        f"messages sent {sent:,} ({sent / window:.0f}/s), posted (seen by any client) "
        f"{posted:,}, server's last id {stats.get('last_id', '?')} (when the clients had left)"
    )
    if posted < sent:
        print(
            f"  {sent - posted:,} sent messages reached no client: the server had not posted "
            f"them {run.drain:.1f} s after the window (it was behind), or dropped them"
        )
    print(
        f"received per client: min {min(received):,}  median {statistics.median(received):,.0f}"
        f"  max {max(received):,}  (expected {sent:,} each; {sent * len(members):,} in all, "
        f"{sent * len(members) / window:,.0f}/s)"
    )
    print(
        f"lost (client x message) {lost:,}; clients missing any {sum(1 for n in missing if n)}; "
        f"duplicates {duplicates}"
    )
    print(
        f"order: {len(sequences)} distinct id sequence(s) among {len(members)} clients "
        f"({'identical on every client' if same_order else 'NOT identical'}); "
        f"ids strictly increasing: {'yes' if not not_increasing else f'no ({not_increasing})'}; "
        f"one id per message: {'yes' if not inconsistent else f'no ({inconsistent})'}; "
        f"ids contiguous: {'yes' if contiguous else 'no'}"
    )
    if not same_order and not not_increasing and not inconsistent:
        # Increasing ids, one per message: each client saw the one room order, minus what it
        # did not receive. The sequences differ only by what went missing.
        print("  (the sequences differ only by missing messages: no two clients disagree on order)")
    print()
    print(f"latency over {len(total_lat):,} deliveries (wall clock, this machine):")
    print(f"  send -> receive      {_spread(total_lat)}   mean {_ms(statistics.fmean(total_lat))}")
    print(f"  send -> server ts    {_spread(up_lat)}")
    print(f"  server ts -> receive {_spread(down_lat)}")
    print()
    seconds = run.per_second
    busiest = (max(s for s, _ in seconds), max(c for _, c in seconds)) if seconds else (0, 0)
    print(
        f"CPU over the window (100 % = one core): server {server_cpu:.0f} % "
        f"(busiest second {busiest[0]:.0f} %, idle room {run.server_cpu_idle:.0f} %), "
        f"client process {client_cpu:.0f} % (busiest second {busiest[1]:.0f} %)"
    )
    print("  per second, server/client %: " + " ".join(f"{s:.0f}/{c:.0f}" for s, c in seconds[:60]))
    print(
        f"waited for a CPU (run queue; other processes, or each other): server "
        f"{100 * run.run_queue[0] / window:.0f} %, client {100 * run.run_queue[1] / window:.0f} %"
        " of the window"
    )
    print(
        f"server event-loop lag: p50 {_ms(stats.get('lag_p50', 0))}  "
        f"p99 {_ms(stats.get('lag_p99', 0))}  max {_ms(stats.get('lag_max', 0))} ms"
    )
    if in_window:
        print(
            f"CPU per chat.message delivered in the window ({in_window / window:,.0f}/s): "
            f"server {1e6 * run.server_cpu / in_window:.0f} µs, "
            f"client {1e6 * run.client_cpu / in_window:.0f} µs"
        )
    print(f"client event-loop lag: {_spread(run.client_lags)}")
    slips = [s for m in members for s in m.send_slips]
    print(f"client sends, late against schedule: {_spread(slips)}")
    if client_cpu >= 90:
        print("note: the client process used a whole core: its receive times run late")
    print()
    print(f"error events: {dict(errors) or 'none'}; other events: {dict(others) or 'none'}")
    print(
        f"server warnings: {stats.get('warning_count', '?')} "
        + "; ".join(stats.get("warnings", [])[:5])
    )
    for who, n in (("server", stats.get("lost_writes", 0)), ("client", run.lost_writes.count)):
        if n:
            print(f"{who}: {n:,} writes to connections already lost (asyncio: {LOST_WRITE!r})")
    disconnects = [u for u in unexpected if " disconnected " in u]
    print(f"disconnects during the run: {len(disconnects)}")
    for line in disconnects[:10]:
        print(f"  {line}")
    strays = [u for u in unexpected if " disconnected " not in u]
    if strays:
        print(f"unexpected messages: {len(strays)}, e.g. {strays[:3]}")
    print()

    goals = [
        ("nothing lost", lost == 0 and sent > 0),
        ("same order on every client", same_order),
        ("ids strictly increasing", not not_increasing and not inconsistent),
        (f"p99 delivery ≤ {LATENCY_GOAL * 1000:.0f} ms ({_ms(p99)} ms)", p99 <= LATENCY_GOAL),
        ("no rate_limited errors", errors["rate_limited"] == 0),
        ("no disconnects", not disconnects),
    ]
    for label, met in goals:
        print(f"{'PASS' if met else 'MISS'}  {label}")
    return all(met for _, met in goals)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run the server (child mode) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="connections (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="sending window (30)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages/s per client (1)")
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="s to wait for stragglers after the window, at most (5; less once all arrived)",
    )
    parser.add_argument("--quick", action="store_true", help="50 clients for 5 s")
    parser.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="deflate",
        help="what the clients offer (deflate, as websockets and browsers do)",
    )
    parser.add_argument(
        "--client",
        choices=tuple(CLIENTS),
        default="light",
        help="light: a lean receiver (default); websockets: websockets' asyncio client",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--serve", type=int, metavar="PORT", help="(child) run the server")
    args = parser.parse_args(argv)

    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.quick:
        args.clients, args.seconds = 50, 5.0
    if args.clients < 1 or args.seconds <= 0 or not 0 < args.rate <= 5:
        parser.error("--clients ≥ 1, --seconds > 0, 0 < --rate ≤ 5 (the server's rate limit)")

    print_header("chat load: one room, every client posting")
    limit = raise_fd_limit()
    print(
        f"{args.clients} clients x {args.rate:g} message/s for {args.seconds:g} s, "
        f"{args.client} client, compression offered: {args.compression}, "
        f"open-file limit {limit}\n",
        flush=True,
    )
    began = time.monotonic()
    with child(__file__, ["--serve", "0"], "server process") as server:
        port = int(server.expect("PORT ", 15))
        wait_for_port(port)
        check_health(port, server.pid)
        print(f"server process {server.pid} on port {port}", flush=True)
        run = asyncio.run(run_clients(args, server, port))
    print(f"(clients closed and server stopped {time.monotonic() - began:.1f} s in)", flush=True)
    passed = report(run, server.stats[-1] if server.stats else {})
    print(f"\n({time.monotonic() - began:.1f} s)")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    run_main(main)
