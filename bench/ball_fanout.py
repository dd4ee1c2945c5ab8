"""Fan-out of the 60 Hz ``/ball`` stream: the workshop server against a bare broadcast() ticker.

    python bench/ball_fanout.py                           # 300 and 1,000 clients, slow consumers
    python bench/ball_fanout.py --connections 100,300 --seconds 20 --skip-slow
    python bench/ball_fanout.py --quick                   # about a minute

Part 1, fan-out: for each number of connections, the workshop server's ``/ball`` and a bare
server (websockets' ``serve()``, permessage-deflate off as in the workshop server, the
workshop's drift-free ``Ticker`` and plain ``websockets.broadcast()`` of a frame like the
workshop's; no other workshop code) take turns, each in a fresh child process, with the
clients in one or two processes of their own. Goals: server CPU workshop/bare ≤ 1.0x; at 300
connections the worst client gets ≥ 95 % of the ticks. Part 2, slow consumers (workshop
only): 100 clients, then with two that never read and two that read slowly. Goals: the
others' frame rate and delay within 10 % of the baseline, the server's memory bounded.
bench/README.md has the details.

Linux only (CPU time and memory come from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from _common import (
    HOST,
    check_health,
    child,
    cpu_seconds,
    print_header,
    raise_fd_limit,
    rss_bytes,
    run_main,
    wait_for_port,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from workshop_lib.ball.ticker import Ticker

RATE = 60.0  # the ball lesson's tick rate (workshop_lib.ball.server.BallLesson)
CPU_GOAL = 1.0  # server CPU, workshop/bare
CPU_NOISE = 1.05  # a CPU ratio up to this is reported as within noise, not as a miss
WORST_GOAL = 0.95  # share of the ticks the worst client receives, at 300 connections
SLOW_GOAL = 0.10  # the other clients' fps and delay with a slow consumer, against without
SLOW_CLIENTS = 100  # normal clients next to the slow consumer
SLOW_READ_PERIOD = 0.1  # the slow reader reads one frame this often (s)
STATS_EVERY = 1.0  # the server children print their counters this often (s)
WARMUP = 2.0  # s between the last client connecting and the measurement window
MAX_QUEUE = 4096  # frames a normal client may hold unread: it never slows the server down
SMALL_RCVBUF = 4096  # SO_RCVBUF of every other slow consumer (the kernel doubles it)
CONNECT_AT_ONCE = 25  # handshakes in flight per client process while connecting
SERVER_LOOP = "asyncio"  # both servers' event loop (--loop)


def connect_deadline(count: int) -> float:
    """Seconds a client process may take to open ``count`` connections (then it goes on)."""
    return 20.0 + 0.03 * count


# -- the two servers, each in a child process ---------------------------------------------------


def _stats_until_eof(stats: Callable[[], dict[str, Any]]) -> None:
    """Print ``STATS {...}`` once a second until stdin closes (the parent's signal to stop)."""
    eof = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        eof.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    while not eof.wait(STATS_EVERY):
        print("STATS " + json.dumps(stats()), flush=True)


def _backlog(connection: ServerConnection) -> int:
    transport = connection.transport
    return transport.get_write_buffer_size() if transport is not None else 0


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a server child runs on (``--loop``): None is asyncio's own."""
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def serve_workshop(loop: str = "asyncio") -> None:
    """Run ``start_server(port=0)`` and report the ball lesson's counters until stdin closes."""
    from workshop_lib import start_server
    from workshop_lib.server.loop import LoopThread

    LoopThread.loop_factory = _loop_factory(loop)  # what `serve --loop` does

    server = start_server(port=0, name="bench-ball")
    ball = server.lesson("ball")

    async def nothing() -> None:
        pass

    def counters() -> dict[str, Any]:
        # Read from this thread, not the server's loop, so that a busy loop cannot stop
        # the report: copying a set and reading ints and buffer sizes is safe under the GIL.
        clients = ball.clients.copy()
        started = time.perf_counter()
        try:
            # How long the loop takes to run a trivial coroutine: its responsiveness.
            server.run(nothing(), timeout=STATS_EVERY)
            lag: float | None = (time.perf_counter() - started) * 1000
        except TimeoutError:
            lag = None
        return {
            "t": time.time(),  # when the tick below was read
            "clients": len(clients),
            "skipped": ball.frames_skipped,
            "backlog": max((_backlog(c) for c in clients), default=0),
            "tick": ball.state.tick,
            "lag_ms": lag,
        }

    try:
        print(f"PORT {server.port}", flush=True)
        _stats_until_eof(counters)
    finally:
        server.stop()


def _bare_frame(tick: int, ts: float) -> str:
    # The workshop's ball.state frame, field for field: a ball moving at (0.37, -0.23) and
    # bouncing between 0.05 and 0.95, so the floats have as many digits as the real ones.
    t = tick / RATE
    x = 0.05 + 0.9 * abs((0.37 * t / 0.9) % 2 - 1)
    y = 0.05 + 0.9 * abs((0.23 * t / 0.9 + 0.5) % 2 - 1)
    vx, vy = 0.37, -0.23
    return (
        f'{{"type":"ball.state","tick":{tick},"x":{x!r},"y":{y!r},"vx":{vx!r},"vy":{vy!r},'
        f'"radius":0.05,"color":"#e4572e","paused":false,"ts":{ts!r}}}'
    )


def _bare_ticker(
    clients: set[ServerConnection], state: dict[str, int], floor: bool = False
) -> Ticker:
    """The bare server's ticker: the workshop's own (drift-free; more than a tick late, one
    frame for the latest tick), so both servers send the same number of frames."""

    def tick(steps: int) -> None:
        state["tick"] += steps
        if not floor:
            broadcast(clients, _bare_frame(state["tick"], time.time()))
            return
        # The floor under any fan-out: the frame built once, one transport.write() per
        # connection, no check at all (bench/ball_scale_out.py's "floor" row).
        frame = Frame(Opcode.TEXT, _bare_frame(state["tick"], time.time()).encode())
        data = frame.serialize(mask=False, extensions=[])
        for client in clients:
            client.transport.write(data)

    return Ticker(RATE, tick, name="bare-ticker")


async def _serve_bare(deflate: bool, floor: bool = False) -> None:
    clients: set[ServerConnection] = set()
    state = {"tick": 0}

    async def handler(websocket: ServerConnection) -> None:
        clients.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            clients.discard(websocket)

    # Like the workshop server (workshop_lib/app/app.py): no permessage-deflate, unless asked.
    compression = "deflate" if deflate else None
    async with serve(handler, HOST, 0, compression=compression) as server:
        ticker = _bare_ticker(clients, state, floor)
        ticker.start()
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        eof = asyncio.ensure_future(asyncio.to_thread(sys.stdin.buffer.read))
        loop = asyncio.get_running_loop()
        while not eof.done():
            due = loop.time() + STATS_EVERY
            await asyncio.wait({eof}, timeout=STATS_EVERY)
            counters = {
                "clients": len(clients),
                "skipped": 0,
                "backlog": max((_backlog(c) for c in clients), default=0),
                "tick": state["tick"],
                "lag_ms": max(0.0, loop.time() - due) * 1000,  # how late this task woke
            }
            print("STATS " + json.dumps({"t": time.time(), **counters}), flush=True)
        await ticker.stop()


def serve_bare(deflate: bool, loop: str = "asyncio", floor: bool = False) -> None:
    """Run the bare broadcast server (or the floor: bare writes) until stdin closes."""
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        runner.run(_serve_bare(deflate, floor))


# -- the clients, in child processes -----------------------------------------------------------


class Tally:
    """What one connection received inside the measurement window."""

    __slots__ = ("bytes", "closed_early", "distinct", "first_tick", "frames", "last_tick")

    def __init__(self) -> None:
        self.frames = 0  # every frame, repeats included
        self.distinct = 0  # frames whose tick is newer than the one before
        self.first_tick = -1
        self.last_tick = -1
        self.bytes = 0
        self.closed_early = False


def _parse(message: str) -> tuple[int, float]:
    # The frames are compact JSON with "ts" last: two finds are far cheaper than json.loads,
    # and the client's CPU is part of what the machine has to share.
    i = message.find('"tick":') + 7
    return int(message[i : message.find(",", i)]), float(message[message.rfind(":") + 1 : -1])


async def _count_frames(
    websocket: ClientConnection, tally: Tally, window: list[float], delays: dict[int, int]
) -> None:
    last = -1
    clock = time.time
    try:
        async for message in websocket:
            now = clock()
            if not window[0] <= now < window[1]:
                continue
            assert isinstance(message, str)
            i = message.find('"tick":') + 7
            tick = int(message[i : message.find(",", i)])
            key = int((now - float(message[message.rfind(":") + 1 : -1])) * 10_000)  # 0.1 ms
            delays[key] = delays.get(key, 0) + 1
            tally.frames += 1
            tally.bytes += len(message)
            if tick > last:
                tally.distinct += 1
                if tally.first_tick < 0:
                    tally.first_tick = tick
                last = tally.last_tick = tick
    except ConnectionClosed:
        pass
    tally.closed_early = clock() < window[1]


async def _read_slowly(
    websocket: ClientConnection, window: list[float], samples: list[list[float]]
) -> dict[str, Any]:
    """Read one frame every SLOW_READ_PERIOD; note (time in window, delay, tick) of each."""
    try:
        while True:
            message = await websocket.recv()
            now = time.time()
            if window[0] <= now < window[1]:
                assert isinstance(message, str)
                tick, ts = _parse(message)
                samples.append([round(now - window[0], 3), round(now - ts, 4), tick])
            await asyncio.sleep(SLOW_READ_PERIOD)
    except ConnectionClosed:
        return {
            "closed_at": round(time.time() - window[0], 1),
            "code": websocket.close_code,
            "reason": websocket.close_reason,
        }


def _tcp_socket(rcvbuf: int | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Before connecting, so that the window the client advertises is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return sock


def _stalled_socket(url_host: str, port: int, path: str, rcvbuf: int | None) -> socket.socket:
    """A raw TCP connection that completes the WebSocket handshake and never reads again."""
    sock = _tcp_socket(rcvbuf)
    sock.settimeout(30)
    sock.connect((url_host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {url_host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the stalled client's handshake")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {response.splitlines()[0]!r}")
    return sock  # offers no extension: the server sends it plain frames


def _drain(sock: socket.socket) -> dict[str, Any]:
    """Read what the stalled socket's kernel buffer holds; say whether the server closed it."""
    sock.setblocking(False)
    pending, state = 0, "open"
    try:
        while pending < 64 * 2**20:
            chunk = sock.recv(2**16)
            if not chunk:
                state = "closed by the server"
                break
            pending += len(chunk)
    except BlockingIOError:
        pass
    except OSError as exc:
        state = f"reset ({exc.strerror})"
    return {"pending_bytes": pending, "state": state}


def _rcvbuf(i: int) -> int | None:
    # Every other slow consumer gets a small receive buffer: with the kernel's default one,
    # a non-reading client holds many seconds of frames before the server sees any backlog.
    return SMALL_RCVBUF if i % 2 else None


async def _clients(url: str, count: int, stalled: int, slow: int, compression: str) -> None:
    window = [math.inf, math.inf]  # set by the parent's MEASURE line
    delays: dict[int, int] = {}
    tallies = [Tally() for _ in range(count)]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    options: dict[str, Any] = {
        "open_timeout": 120,
        "compression": None if compression == "none" else "deflate",
    }

    async def open_one(max_queue: int) -> ClientConnection:
        async with gate:
            return await connect(url, max_queue=max_queue, **options)

    started = time.monotonic()
    # A server that stops answering handshakes must not hang the run: whatever has not
    # connected by the deadline counts as failed, and the run goes on with the rest.
    opening = [asyncio.create_task(open_one(MAX_QUEUE)) for _ in range(count)]
    await asyncio.wait(opening, timeout=connect_deadline(count))
    for task in opening:
        task.cancel()
    await asyncio.gather(*opening, return_exceptions=True)
    websockets: list[ClientConnection] = []
    errors: list[str] = []
    for task in opening:
        if not task.cancelled() and task.exception() is None:
            websockets.append(task.result())
        else:
            errors.append(
                "no handshake by the deadline" if task.cancelled() else repr(task.exception())
            )
    # The slow reader keeps websockets' default max_queue (16 frames): past that it stops
    # reading from the socket, and the server sees a full connection.
    host, port = url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    slow_sockets = []
    for i in range(slow):
        sock = _tcp_socket(_rcvbuf(i))
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, int(port)))
        slow_sockets.append(await connect(url, sock=sock, **options))  # max_queue: 16
    raw = [
        await asyncio.to_thread(_stalled_socket, host, int(port), "/ball", _rcvbuf(i))
        for i in range(stalled)
    ]
    tasks = [
        asyncio.create_task(_count_frames(ws, tally, window, delays))
        for ws, tally in zip(websockets, tallies, strict=False)
    ]
    slow_samples: list[list[list[float]]] = [[] for _ in slow_sockets]
    slow_tasks = [
        asyncio.create_task(_read_slowly(ws, window, samples))
        for ws, samples in zip(slow_sockets, slow_samples, strict=True)
    ]
    extensions = sorted(
        {
            (ws.response.headers.get("Sec-WebSocket-Extensions", "none") if ws.response else "?")
            for ws in websockets
        }
    )
    ready = {
        "connected": len(websockets),
        "errors": errors[:3],
        "failed": len(errors),
        "seconds": round(time.monotonic() - started, 2),
        "extensions": extensions,
    }
    print("READY " + json.dumps(ready), flush=True)

    line = await asyncio.to_thread(sys.stdin.readline)
    if line.startswith("MEASURE "):
        window[0], window[1] = (float(v) for v in line.split()[1:3])
        await asyncio.sleep(max(0.0, window[1] - time.time()) + 0.3)
        slow_closed = [t.result() if t.done() else None for t in slow_tasks]
        result = {
            "tallies": [
                [t.frames, t.distinct, t.first_tick, t.last_tick, t.bytes, t.closed_early]
                for t in tallies[: len(websockets)]
            ],
            "delays": sorted(delays.items()),
            "slow": [
                {"samples": samples, "closed": closed, "rcvbuf": _rcvbuf(i)}
                for i, (samples, closed) in enumerate(zip(slow_samples, slow_closed, strict=True))
            ],
            "stalled": [{"rcvbuf": _rcvbuf(i), **_drain(sock)} for i, sock in enumerate(raw)],
        }
        print("RESULT " + json.dumps(result), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes stdin
    for task in tasks + slow_tasks:
        task.cancel()
    for sock in raw:
        sock.close()
    closing = [ws.close() for ws in websockets + slow_sockets]
    await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=20)


def run_clients(url: str, count: int, stalled: int, slow: int, compression: str) -> None:
    """Child mode: open the connections, say READY, measure the window, say RESULT."""
    asyncio.run(_clients(url, count, stalled, slow, compression))


# -- the parent: windows, samples --------------------------------------------------------------


def _sleep_until(wall: float) -> None:
    while (left := wall - time.time()) > 0:
        time.sleep(min(left, 0.5))


@dataclass
class Run:
    """One server, one set of clients, one measurement window: the raw figures."""

    kind: str
    asked: int  # connections asked for (``connections`` is how many opened)
    seconds: float
    procs: int
    connections: int = 0
    start: float = 0.0  # wall-clock start of the window
    wall: float = 0.0
    server_cpu: float = 0.0  # CPU seconds in the window
    client_cpu: list[float] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    connect_seconds: float = 0.0
    failed: int = 0
    tallies: list[list[Any]] = field(default_factory=list)
    delays: dict[int, int] = field(default_factory=dict)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s into the window, bytes)
    stats: list[dict[str, Any]] = field(default_factory=list)  # server counters in the window
    slow: list[dict[str, Any]] = field(default_factory=list)  # the slow readers' samples
    stalled: list[dict[str, Any]] = field(default_factory=list)  # the stalled sockets at the end


def measure(
    kind: str,
    connections: int,
    seconds: float,
    *,
    procs: int = 1,
    compression: str = "deflate",
    bare_deflate: bool = False,
    stalled: int = 0,
    slow: int = 0,
    rss_every: float = 0.0,
) -> Run:
    """Start a ``kind`` server and the clients, measure one window, stop them all."""
    run = Run(kind, connections, seconds, procs)
    with ExitStack() as stack:
        server_args = [f"--serve-{kind}", "--loop", SERVER_LOOP]
        server_args += ["--deflate"] if bare_deflate else []
        server = stack.enter_context(child(__file__, server_args, f"{kind} server"))
        port = int(server.expect("PORT ", 30))
        wait_for_port(port)
        if kind == "workshop":
            check_health(port, server.pid)
        url = f"ws://{HOST}:{port}/ball"
        counts = [connections // procs + (i < connections % procs) for i in range(procs)]
        clients = []
        for i, count in enumerate(counts):
            extra = ["--stalled", str(stalled), "--slow-readers", str(slow)] if i == 0 else []
            args = ["--client", url, "--count", str(count), "--compression", compression]
            clients.append(
                stack.enter_context(child(__file__, args + extra, f"client process {i + 1}"))
            )
        for process in clients:
            ready = json.loads(process.expect("READY ", connect_deadline(connections) + 60))
            run.connect_seconds = max(run.connect_seconds, ready["seconds"])
            run.failed += ready["failed"]
            run.extensions = sorted(set(run.extensions) | set(ready["extensions"]))
            if ready["failed"]:
                print(f"  {ready['failed']} connections failed, e.g. {ready['errors']}")
        time.sleep(WARMUP)

        start = run.start = time.time() + 0.2
        end = start + seconds
        for process in clients:
            process.send(f"MEASURE {start!r} {end!r}")
        pids = [server.pid] + [c.pid for c in clients]
        _sleep_until(start)
        t0 = time.time()
        cpu0 = [cpu_seconds(pid) for pid in pids]
        run.rss.append((0.0, rss_bytes(server.pid)))
        if rss_every:
            for k in range(1, int(seconds / rss_every) + 1):
                _sleep_until(start + k * rss_every)
                run.rss.append((time.time() - start, rss_bytes(server.pid)))
        _sleep_until(end)
        cpu1 = [cpu_seconds(pid) for pid in pids]
        run.wall = time.time() - t0
        if not rss_every:
            run.rss.append((time.time() - start, rss_bytes(server.pid)))
        run.server_cpu = cpu1[0] - cpu0[0]
        run.client_cpu = [b - a for a, b in zip(cpu0[1:], cpu1[1:], strict=True)]

        for process in clients:
            result = json.loads(process.expect("RESULT ", 60))
            run.tallies += result["tallies"]
            for key, count in result["delays"]:
                run.delays[key] = run.delays.get(key, 0) + count
            run.slow += result["slow"]
            run.stalled += result["stalled"]
        run.stats = [s for s in server.stats if start - STATS_EVERY <= s["t"] <= end + STATS_EVERY]
        run.connections = len(run.tallies)
    return run


# -- the figures -------------------------------------------------------------------------------


def _histogram_percentile(histogram: dict[int, int], q: float) -> float:
    """Nearest-rank quantile of 0.1 ms buckets, in ms."""
    total = sum(histogram.values())
    if not total:
        return math.nan
    rank = max(1, math.ceil(q * total))
    seen = 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= rank:
            return key / 10
    return math.nan


@dataclass
class Figures:
    """What the tables show for one run."""

    server_pct: float  # of one core
    client_pct: float  # all client processes together
    cpu_us_per_frame: float  # server CPU per frame delivered
    tick_hz: float  # how fast the server's tick counter advanced in the window
    worst_fps: float  # distinct ticks per second, the worst connection
    worst_share: float  # ... as a share of the ticks that elapsed
    median_fps: float
    p50_ms: float
    p99_ms: float
    lag_ms: float | None  # the server loop's worst lag in the window; None: over a second
    closed: int  # connections that closed before the window ended
    frame_bytes: float  # mean frame length in characters


def _tick_hz(run: Run) -> float:
    # The server's own tick counter, from its once-a-second report: both tickers are
    # drift-free, so this is 60 unless a ticker stalls.
    stats = [s for s in run.stats if run.start <= s["t"] <= run.start + run.seconds]
    if len(stats) < 2 or stats[-1]["t"] <= stats[0]["t"]:
        return RATE
    return (stats[-1]["tick"] - stats[0]["tick"]) / (stats[-1]["t"] - stats[0]["t"])


def _worst_lag(run: Run) -> float | None:
    lags = [s["lag_ms"] for s in run.stats if run.start <= s["t"] <= run.start + run.seconds]
    if any(lag is None for lag in lags):
        return None
    return max(lags, default=math.nan)


def figures(run: Run) -> Figures:
    tallies = run.tallies
    tick_hz = _tick_hz(run)
    distinct = sorted(t[1] for t in tallies) or [0]
    frames = sum(t[0] for t in tallies)
    return Figures(
        server_pct=100 * run.server_cpu / run.wall,
        client_pct=100 * sum(run.client_cpu) / run.wall,
        cpu_us_per_frame=1e6 * run.server_cpu / frames if frames else math.nan,
        tick_hz=tick_hz,
        worst_fps=distinct[0] / run.seconds,
        worst_share=distinct[0] / (tick_hz * run.seconds),
        median_fps=statistics.median(distinct) / run.seconds,
        p50_ms=_histogram_percentile(run.delays, 0.50),
        p99_ms=_histogram_percentile(run.delays, 0.99),
        lag_ms=_worst_lag(run),
        closed=sum(1 for t in tallies if t[5]),
        frame_bytes=sum(t[4] for t in tallies) / frames if frames else 0.0,
    )


def _lag(lag: float | None) -> str:
    return ">1000" if lag is None else f"{lag:.0f}"


FANOUT_HEAD = (
    f"{'server':8} {'conns':>5} {'srv CPU':>8} {'cli CPU':>8} {'µs/frame':>8} {'tick Hz':>7} "
    f"{'worst fps':>9} {'(% ticks)':>9} {'median':>6} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'lag ms':>6} {'RSS MB':>6}"
)


def fanout_row(run: Run, f: Figures) -> str:
    rss = run.rss[-1][1] / 2**20
    row = (
        f"{run.kind:8} {run.connections:>5} {f.server_pct:>7.1f}% {f.client_pct:>7.1f}% "
        f"{f.cpu_us_per_frame:>8.1f} {f.tick_hz:>7.1f} {f.worst_fps:>9.1f} "
        f"{100 * f.worst_share:>8.1f}% {f.median_fps:>6.1f} {f.p50_ms:>7.1f} {f.p99_ms:>7.1f} "
        f"{_lag(f.lag_ms):>6} {rss:>6.1f}"
    )
    if run.connections < run.asked:
        row += f"  (of {run.asked}: the rest got no handshake in time)"
    if f.closed:
        row += f"  ({f.closed} closed early)"
    return row


def _verdict_cpu(ratio: float) -> str:
    if ratio <= CPU_GOAL:
        return "PASS"
    if ratio <= CPU_NOISE:
        return "within noise"
    return "MISS"


def fanout(args: argparse.Namespace) -> list[tuple[Run, Figures]]:
    """Part 1: workshop and bare in turn, for each number of connections."""
    print(
        f"## Fan-out: {args.seconds:g} s window per run, {WARMUP:g} s after the last client "
        f"connected; clients: websockets asyncio client, compression={args.compression}, "
        f"max_queue={MAX_QUEUE}\n"
    )
    done: list[tuple[Run, Figures]] = []
    for n in args.connections:
        # One client process saturates a core at about 300 connections: use both cores.
        procs = args.client_procs or (1 if n <= 150 else 2)
        for repeat in range(args.repeats):
            for kind in ("workshop", "bare") if repeat % 2 == 0 else ("bare", "workshop"):
                run = measure(
                    kind,
                    n,
                    args.seconds,
                    procs=procs,
                    compression=args.compression,
                    bare_deflate=args.bare_deflate and kind == "bare",
                )
                f = figures(run)
                per_process = ", ".join(f"{100 * c / run.wall:.0f}%" for c in run.client_cpu)
                print(
                    f"{kind} x {run.connections}: connected in {run.connect_seconds:.1f} s; "
                    f"extensions: {'; '.join(run.extensions)}; frames {f.frame_bytes:.0f} chars; "
                    f"CPU: server {f.server_pct:.0f}%, client process(es) {per_process}",
                    flush=True,
                )
                done.append((run, f))
    negotiated = {
        kind: {e for r, _ in done if r.kind == kind for e in r.extensions}
        for kind in ("workshop", "bare")
    }
    if negotiated["workshop"] != negotiated["bare"]:
        print(
            f"\nwarning: not like for like: the workshop server negotiated "
            f"{sorted(negotiated['workshop'])}, the bare one {sorted(negotiated['bare'])}"
        )
    print("\n" + FANOUT_HEAD)
    for run, f in done:
        print(fanout_row(run, f))
    print()
    for n in args.connections:
        mine = [(r, f) for r, f in done if r.asked == n]
        work = [f for r, f in mine if r.kind == "workshop"]
        bare = [f for r, f in mine if r.kind == "bare"]
        if not work or not bare:
            continue
        cpu = statistics.fmean(f.server_pct for f in work) / statistics.fmean(
            f.server_pct for f in bare
        )
        per_frame = statistics.fmean(f.cpu_us_per_frame for f in work) / statistics.fmean(
            f.cpu_us_per_frame for f in bare
        )
        worst = min(f.worst_share for f in work)
        line = (
            f"{n} connections: server CPU workshop/bare {cpu:.2f}x "
            f"(goal ≤ {CPU_GOAL:.2f}x, ≤ {CPU_NOISE:.2f}x is noise): {_verdict_cpu(cpu)}; "
            f"per delivered frame {per_frame:.2f}x; worst client: workshop "
            f"{100 * worst:.1f}%, bare {100 * min(f.worst_share for f in bare):.1f}% of ticks"
        )
        if n == 300:
            verdict = "PASS" if worst >= WORST_GOAL else "MISS"
            line += f" (goal ≥ {100 * WORST_GOAL:.0f}%): {verdict}"
        print(line)
        short = [r for r, _ in mine if r.connections < r.asked]
        for run in short:
            print(
                f"  not like for like: the {run.kind} server accepted {run.connections} of "
                f"{run.asked} connections in time (its CPU is for fewer clients)"
            )
    return done


# -- part 2 ------------------------------------------------------------------------------------


def _mb(n: int) -> float:
    return n / 2**20


def slow_consumers(args: argparse.Namespace) -> None:
    """Part 2: a stalled client and a slow reader next to SLOW_CLIENTS normal ones."""
    baseline_seconds = max(args.seconds, args.slow_seconds / 3)
    print(
        f"\n## Slow consumers: workshop server, {SLOW_CLIENTS} normal clients; baseline "
        f"{baseline_seconds:g} s, each variant {args.slow_seconds:g} s; server RSS every 5 s\n"
    )
    plans = [
        ("baseline", baseline_seconds, 0, 0),
        ("+2 stalled", args.slow_seconds, 2, 0),
        ("+2 slow readers", args.slow_seconds, 0, 2),
    ]
    runs: list[tuple[str, Run, Figures]] = []
    for label, seconds, stalled, slow in plans:
        run = measure(
            "workshop",
            SLOW_CLIENTS,
            seconds,
            compression=args.compression,
            stalled=stalled,
            slow=slow,
            rss_every=5.0,
        )
        runs.append((label, run, figures(run)))
        print(f"{label}: done", flush=True)

    print(
        f"\n{'run':15} {'secs':>4} {'srv CPU':>7} {'worst fps':>9} {'median':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'lag ms':>6} {'skipped':>7}  RSS MB start/max/end"
    )
    for label, run, f in runs:
        sizes = [b for _, b in run.rss]
        skipped = run.stats[-1]["skipped"] - run.stats[0]["skipped"] if run.stats else 0
        print(
            f"{label:15} {run.seconds:>4.0f} {f.server_pct:>6.1f}% {f.worst_fps:>9.1f} "
            f"{f.median_fps:>6.1f} {f.p50_ms:>7.1f} {f.p99_ms:>7.1f} {_lag(f.lag_ms):>6} "
            f"{skipped:>7}  {_mb(sizes[0]):.1f}/{_mb(max(sizes)):.1f}/{_mb(sizes[-1]):.1f}"
        )
    base = runs[0][2]
    for label, _, f in runs[1:]:
        changes = {
            "worst fps": f.worst_fps / base.worst_fps - 1,
            "median fps": f.median_fps / base.median_fps - 1,
            "p50 delay": f.p50_ms / base.p50_ms - 1,
            "p99 delay": f.p99_ms / base.p99_ms - 1,
        }
        worse = [k for k, v in changes.items() if (-v if "fps" in k else v) > SLOW_GOAL]
        print(
            f"{label} vs baseline: "
            + ", ".join(f"{k} {v:+.0%}" for k, v in changes.items())
            + f" (goal within {SLOW_GOAL:.0%}): "
            + ("PASS" if not worse else "MISS on " + ", ".join(worse))
        )

    for label, run, _ in runs[1:]:
        print(
            f"\n{label}: every 5 s into the window (they connected {WARMUP:g}+ s before it). "
            "Server: RSS, clients, frames skipped so far, largest write buffer, loop lag."
        )
        head = f"{'t s':>4} {'RSS MB':>7} {'clients':>7} {'skipped':>8} {'buffer KiB':>10} "
        head += f"{'lag ms':>6}"
        if run.slow:
            print(
                "Slow readers (one frame per 100 ms, websockets' default max_queue=16): delay "
                "of the last frame read, mean tick step per read over the last 5 s; "
                + " and ".join(_buffer_name(r["rcvbuf"]) for r in run.slow)
            )
            head += "".join(f"  {'delay s':>7} {'step':>4}" for _ in run.slow)
        print(head)
        for t, size in run.rss:
            stat = _stat_at(run, t)
            line = f"{t:>4.0f} {_mb(size):>7.1f} "
            if stat:
                line += (
                    f"{stat['clients']:>7} {stat['skipped']:>8} {stat['backlog'] / 1024:>10.1f} "
                    f"{_lag(stat['lag_ms']):>6}"
                )
            for reader in run.slow:
                line += "  " + _slow_at(reader["samples"], t)
            print(line)
        for reader in run.slow:
            closed = reader["closed"]
            how = (
                f"closed at {closed['closed_at']} s, code {closed['code']} {closed['reason']!r}"
                if closed
                else "still reading frames when the window ended"
            )
            print(f"slow reader, {_buffer_name(reader['rcvbuf'])}: {how}")
        for sock in run.stalled:
            print(
                f"stalled client, {_buffer_name(sock['rcvbuf'])}: at the end {sock['state']}, "
                f"{sock['pending_bytes'] / 1024:.0f} KiB unread in its receive buffer"
            )


def _buffer_name(rcvbuf: int | None) -> str:
    return f"SO_RCVBUF {rcvbuf // 1024} KiB" if rcvbuf else "default SO_RCVBUF"


def _stat_at(run: Run, t: float) -> dict[str, Any] | None:
    """The server's counters nearest to ``t`` seconds into the window."""
    if not run.stats:
        return None
    return min(run.stats, key=lambda s: abs(s["t"] - run.start - t))


def _slow_at(samples: list[list[float]], t: float) -> str:
    before = [s for s in samples if s[0] <= t + 0.05]
    if not before:
        return "-"
    recent = [s for s in samples if t - 5 < s[0] <= t + 0.05]
    step = (recent[-1][2] - recent[0][2]) / (len(recent) - 1) if len(recent) > 1 else math.nan
    return f"{before[-1][1]:>7.2f} {step:>4.1f}"


# -- main --------------------------------------------------------------------------------------


def _connection_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of numbers, not {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("at least one number of connections, each ≥ 1")
    return values


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run a child (server or clients) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=_connection_list, help="list (300,1000)")
    parser.add_argument("--seconds", type=float, help="fan-out window per run (10)")
    parser.add_argument("--slow-seconds", type=float, help="window per slow-consumer run (60)")
    parser.add_argument("--skip-slow", action="store_true", help="fan-out only")
    parser.add_argument("--quick", action="store_true", help="300 only, 4 s and 15 s windows")
    parser.add_argument("--repeats", type=int, default=1, help="workshop/bare pairs per count (1)")
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="client processes (0: 1 up to 150 connections, else 2)",
    )
    parser.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="deflate",
        help="what the clients offer (deflate: websockets' default)",
    )
    parser.add_argument(
        "--bare-deflate",
        action="store_true",
        help="bare server with permessage-deflate on (the workshop server has it off)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="both servers' event loop (asyncio)",
    )
    # Child modes, used by the script itself.
    parser.add_argument("--serve-workshop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stalled", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--slow-readers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    raise_fd_limit()  # every child calls main() too
    if args.serve_workshop:
        serve_workshop(args.loop)
        return 0
    if args.serve_bare:
        serve_bare(args.deflate, args.loop, args.floor)
        return 0
    global SERVER_LOOP
    SERVER_LOOP = args.loop
    if args.client:
        run_clients(args.client, args.count, args.stalled, args.slow_readers, args.compression)
        return 0

    quick = args.quick
    if args.connections is None:
        args.connections = [300] if quick else [300, 1000]
    if args.seconds is None:
        args.seconds = 4.0 if quick else 10.0
    if args.slow_seconds is None:
        args.slow_seconds = 15.0 if quick else 60.0
    if args.seconds <= 0 or args.slow_seconds < 5 or args.repeats < 1 or args.client_procs < 0:
        parser.error("--seconds > 0, --slow-seconds ≥ 5, --repeats ≥ 1, --client-procs ≥ 0")
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        parser.error("this benchmark reads CPU time and memory from /proc (Linux)")

    print_header("ball fan-out: workshop /ball vs bare websockets broadcast()")
    from workshop_lib.ball.server import BallLesson

    lesson = BallLesson()
    print(
        f"workshop BallLesson: rate {lesson.rate:g} Hz, backlog_limit {lesson.backlog_limit} B, "
        f"SO_SNDBUF {lesson.send_buffer} B; open-file limit {raise_fd_limit()}\n"
    )
    started = time.monotonic()
    fanout(args)
    if not args.skip_slow:
        slow_consumers(args)
    one, five, _ = os.getloadavg()
    print(f"\n({time.monotonic() - started:.0f} s; load average now {one:.2f}, {five:.2f})")
    return 0


if __name__ == "__main__":
    run_main(main)
