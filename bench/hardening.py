"""The hardening probes of issue 14, as figures: load, memory and joins, before and after.

    python bench/hardening.py                       # this checkout, about 1 min
    python bench/hardening.py --source /tmp/before  # the server from another tree (before)
    python bench/hardening.py --only ball --connections 2000

Three measurements, each against a fresh room server run as the instructor runs it
(``python -m workshop_lib serve --host 0.0.0.0 --token T``, in a child process, its log in
a file):

* **ball** (item 3): ``--connections`` clients open ``/ball`` from one address (127.0.0.1)
  and read what they get, cheaply (one process, non-blocking sockets drained ten times a
  second). Meanwhile a healthy learner from another address (127.0.0.2) watches the ball
  for 6 s (frames per second: worst and median second; delay p50 / p99 from the frames'
  ``ts``) and chats (round trip of its own message, p50 / max). Then Ctrl-C, timed.
* **memory** (item 4): ``--clients`` clients from 25 addresses (127.0.1.x) open ``/echo``,
  each sends 20 (``--messages``) binary messages of 60 KB and never reads. The server's RSS
  at the start, at its peak, and after every client left; a healthy chat client's worst
  round trip meanwhile.
* **joins** (item 5): 2,000 ``Room.join("x")`` calls on the chat model, timed (the loop
  time the server spends on them).

Every figure is printed; nothing is judged. ``--source DIR`` puts ``DIR`` first on the
server's ``PYTHONPATH`` (a ``git archive`` of an older commit's ``workshop_lib``), so the same
probes measure the code before a change.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    free_port,
    percentile,
    print_header,
    raise_fd_limit,
    rss_bytes,
    run_main,
)

TOKEN = "bench-token"
ATTACKER = "127.0.0.1"
HEALTHY = "127.0.0.2"  # another address of this machine: another laptop in the room
_SENDERS: set[asyncio.Task[None]] = set()  # kept: the loop holds only weak references


# -- the server under test --------------------------------------------------------------------


class RoomServer:
    """``python -m workshop_lib serve --host 0.0.0.0 --token T`` in a child process."""

    def __init__(self, source: str | None, extra: list[str]) -> None:
        self.port = free_port()
        env = dict(os.environ)
        if source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "workshop_lib", "serve", "--host", "0.0.0.0"),
                *("--port", str(self.port), "--token", TOKEN, *extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=env,
            # `-m` puts the working directory first on sys.path: run it in the source tree.
            cwd=source,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                health = self.get("/healthz")
                if health.get("pid") == self.proc.pid:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the server did not start; its log:\n{self.log_text()}")
            time.sleep(0.05)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{HEALTHY}:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def rss_mb(self) -> float:
        return rss_bytes(self.proc.pid) / 2**20

    def interrupt(self) -> tuple[float, int | None]:
        """Ctrl-C; seconds until it exited, and its exit status (None: killed after 15 s)."""
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGINT)
        try:
            status: int | None = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            status = None
        return time.perf_counter() - started, status

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def log_summary(server: RoomServer) -> str:
    lines = server.log_text().splitlines()
    tracebacks = sum(line.startswith("Traceback") for line in lines)
    return f"{len(lines)} log lines, {tracebacks} tracebacks"


# -- rude clients (a child process of this script) ------------------------------------------


def handshake(port: int, path: str, login: bool = False) -> bytes:
    """An upgrade with the token; ``login``: a browser's instead (an Origin, no token yet)."""
    key = base64.b64encode(os.urandom(16)).decode()
    credential = (
        f"Origin: http://127.0.0.1:{port}\r\n" if login else f"Authorization: Bearer {TOKEN}\r\n"
    )
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{credential}\r\n"
    ).encode()


async def open_many(
    port: int,
    path: str,
    count: int,
    sources: list[str],
    payload: bytes,
    login: bool = False,
    receive_buffer: int | None = None,
    request: bytes | None = None,
) -> tuple[list[socket.socket], Counter[str]]:
    """Open ``count`` WebSockets (by hand); write ``payload`` on each; return the sockets.

    ``request``: send this instead of the upgrade (an SSE ``GET``; answered 200, not 101).
    """
    loop = asyncio.get_running_loop()
    statuses: Counter[str] = Counter()
    opened: list[socket.socket] = []
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with gate:
            sock = socket.socket()
            sock.setblocking(False)
            if receive_buffer is not None:  # before connecting: the window is agreed then
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            try:
                sock.bind((sources[i % len(sources)], 0))
                await loop.sock_connect(sock, ("127.0.0.1", port))
                await loop.sock_sendall(sock, request or handshake(port, path, login))
                response = b""
                while b"\r\n\r\n" not in response:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
                    if not chunk:
                        break
                    response += chunk
                status = response.split(b" ", 2)[1].decode() if response else "closed"
            except (OSError, TimeoutError, IndexError) as exc:
                status = type(exc).__name__
            statuses[status] += 1
            if status != ("200" if request else "101"):
                sock.close()
                return
            opened.append(sock)
            if payload:
                # Never awaited to the end: a client that does not read is pushed back.
                _SENDERS.add(loop.create_task(_send_quietly(loop, sock, payload)))

    await asyncio.gather(*(one(i) for i in range(count)))
    return opened, statuses


async def _send_quietly(loop: asyncio.AbstractEventLoop, sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        await loop.sock_sendall(sock, data)


def _ping() -> bytes:
    """A masked ping with a 125-byte payload: 131 bytes."""
    from websockets.frames import Frame, Opcode

    return Frame(Opcode.PING, b"p" * 125).serialize(mask=True, extensions=[])


def _control() -> bytes:
    from websockets.frames import Frame, Opcode

    event = json.dumps({"type": "ball.control", "speed": 1.0}).encode()
    return Frame(Opcode.TEXT, event).serialize(mask=True, extensions=[])


def _flood(
    opened: list[socket.socket], data: bytes, pending: dict[socket.socket, memoryview]
) -> int:
    """Write ``data`` over and over to each socket until it takes no more (never blocks);
    bytes sent. ``pending``: where each socket's last partial write stopped (a frame cut in
    two must go on where it was cut, or the stream is no WebSocket any more)."""
    sent = 0
    for sock in opened:
        view = pending.get(sock) or memoryview(data)
        with contextlib.suppress(OSError):
            while n := sock.send(view):
                sent += n
                view = view[n:] or memoryview(data)
        pending[sock] = view
    return sent


def _drain(opened: list[socket.socket]) -> None:
    for sock in opened:
        with contextlib.suppress(OSError):
            while sock.recv(1 << 20):
                pass


def rude_clients(args: argparse.Namespace) -> None:
    """Child mode: open the clients, say how it went, hold them until stdin closes."""
    raise_fd_limit()
    login, receive_buffer = False, None
    if args.rude in ("ping", "primed"):
        # Pings and never a read: a flood (ping) or 131 KB once (primed, from 25
        # addresses: a whole room's worth, within the per-address limit).
        sources = [ATTACKER] if args.rude == "ping" else [f"127.0.1.{i}" for i in range(1, 26)]
        path, receive_buffer = args.path, 4096
        login = args.login
        payload = _ping() * 1000 if args.rude == "primed" else b""
    elif args.rude in ("ball", "control"):  # control: floods controls (main() below)
        sources, path, payload = [ATTACKER], "/ball", b""
    else:
        from websockets.frames import Frame, Opcode

        sources = [f"127.0.1.{i}" for i in range(1, 26)]
        path = "/echo"
        frame = Frame(Opcode.BINARY, os.urandom(60_000)).serialize(mask=True, extensions=[])
        payload = frame * args.messages

    async def main() -> None:
        opened, statuses = await open_many(
            args.port, path, args.count, sources, payload, login, receive_buffer
        )
        print("OPENED " + json.dumps(dict(statuses)), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
        pings, controls = _ping() * 500, _control() * 100
        flooded, pending = 0, {}
        while not stop.is_set():
            if args.rude == "ping":
                flooded += _flood(opened, pings, pending)
                await asyncio.sleep(0.01)
                continue
            if args.rude == "control":
                _flood(opened, controls, pending)
                _drain(opened)
                await asyncio.sleep(0.001)
                continue
            if args.rude == "ball":  # read, cheaply: drain each socket ten times a second
                for sock in opened:
                    try:
                        while sock.recv(1 << 20):
                            pass
                    except (BlockingIOError, OSError):
                        pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        for sock in opened:  # leave at once, like a room closing its laptops
            sock.close()
        print(f"SENT {flooded}", flush=True)

    asyncio.run(main())


class Rude:
    def __init__(
        self,
        kind: str,
        port: int,
        count: int,
        messages: int = 20,
        path: str = "/echo",
        login: bool = False,
    ) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, __file__, "--rude", kind, "--port", str(port)),
                *("--count", str(count), "--messages", str(messages), "--path", path),
                *(["--login"] if login else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("OPENED "):
            raise RuntimeError(f"the rude clients said {line!r}")
        self.statuses: dict[str, int] = json.loads(line[7:])

    def leave(self) -> int:
        """Close the clients; the bytes a flood sent (0 for the others)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        said = self.proc.stdout.read()
        self.proc.wait(30)
        return int(said.split()[-1]) if said.startswith("SENT ") else 0


# -- the healthy learner ----------------------------------------------------------------------


def learner(port: int, path: str) -> Any:
    """websockets' connect to ``path``, with the token, from the healthy learner's address."""
    from websockets.asyncio.client import connect

    return connect(
        f"ws://127.0.0.1:{port}{path}",
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
        local_addr=(HEALTHY, 0),
        open_timeout=30,
    )


async def watch_ball(port: int, seconds: float) -> dict[str, float]:
    per_second: Counter[int] = Counter()
    delays: list[float] = []
    started = time.monotonic()
    async with learner(port, "/ball") as websocket:
        while (elapsed := time.monotonic() - started) < seconds:
            try:
                frame = json.loads(await asyncio.wait_for(websocket.recv(), 2))
            except TimeoutError:
                continue
            per_second[int(elapsed)] += 1
            delays.append((time.time() - frame["ts"]) * 1000)
    fps = [per_second[s] for s in range(1, int(seconds))] or [0]  # second 0: the handshake
    return {
        "fps_worst": min(fps),
        "fps_median": statistics.median(fps),
        "delay_p50": percentile(delays, 0.5),
        "delay_p99": percentile(delays, 0.99),
    }


async def chat_round_trips(port: int, seconds: float) -> dict[str, float]:
    trips: list[float] = []
    async with learner(port, "/chat") as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "healthy"}))
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            text = f"ping {n}"
            sent = time.perf_counter()
            await websocket.send(json.dumps({"type": "chat.send", "text": text}))
            async for message in websocket:
                event = json.loads(message)
                if event.get("type") == "chat.message" and event.get("text") == text:
                    break
            trips.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.25)  # within the rate limit (5/s)
    return {"chat_p50": percentile(trips, 0.5), "chat_max": max(trips)}


def healthy(port: int, seconds: float) -> dict[str, float]:
    async def both() -> dict[str, float]:
        ball, chat = await asyncio.gather(
            watch_ball(port, seconds), chat_round_trips(port, seconds)
        )
        return {**ball, **chat}

    return asyncio.run(both())


# -- the three measurements -------------------------------------------------------------------


def measure_ball(args: argparse.Namespace) -> None:
    print(f"## ball: {args.connections} /ball connections from one address")
    server = RoomServer(args.source, args.server_args)
    try:
        quiet = healthy(server.port, 4)
        print(
            "  alone:      fps worst {fps_worst} median {fps_median}, delay p50 {delay_p50:.1f} "
            "p99 {delay_p99:.1f} ms, chat p50 {chat_p50:.1f} max {chat_max:.1f} ms".format(**quiet)
        )
        started = time.perf_counter()
        rude = Rude("ball", server.port, args.connections)
        print(f"  opened in {time.perf_counter() - started:.1f} s: {rude.statuses}")
        loaded = healthy(server.port, 6)
        print(
            "  under load: fps worst {fps_worst} median {fps_median}, delay p50 {delay_p50:.1f} "
            "p99 {delay_p99:.1f} ms, chat p50 {chat_p50:.1f} max {chat_max:.1f} ms".format(**loaded)
        )
        try:
            stats = server.get("/api/stats")
            shown = {k: stats[k] for k in ("clients", "limits", "load") if k in stats}
            print(f"  /api/stats: {json.dumps(shown)}")
        except OSError as exc:
            print(f"  /api/stats: {exc}")
        seconds, status = server.interrupt()
        print(f"  Ctrl-C with the clients connected: exit {status} after {seconds:.2f} s")
        rude.leave()
        print(f"  server log: {log_summary(server)}")
    finally:
        server.close()


def tcp_kernel_mb() -> float:
    """Memory the kernel holds in TCP buffers, whole machine (both ends here), in MB."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        pass
    return float("nan")


def wait_for_rss(server: RoomServer, settle: float = 1.0, timeout: float = 30.0) -> float:
    """RSS once it stopped changing by more than 1 MB for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = server.rss_mb(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = server.rss_mb()
        if abs(now - last) > 1:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
    return server.rss_mb()


def measure_memory(args: argparse.Namespace) -> None:
    print(f"## memory: {args.clients} /echo clients send {args.messages} x 60 KB, never read")
    server = RoomServer(args.source, args.server_args)
    try:
        healthy(server.port, 2)  # warm up: every lesson's code loaded
        start = wait_for_rss(server)
        # The healthy member chats while the rude clients arrive and send.
        with ThreadPoolExecutor(1) as pool:
            chatting = pool.submit(asyncio.run, chat_round_trips(server.port, 8))
            rude = Rude("memory", server.port, args.clients, args.messages)
            print(f"  opened: {rude.statuses}")
            chat = chatting.result()
        peak = wait_for_rss(server)
        kernel = tcp_kernel_mb()
        rude.leave()
        deadline = time.monotonic() + 30
        while server.get("/api/stats")["clients"] and time.monotonic() < deadline:
            time.sleep(0.2)
        after = wait_for_rss(server, settle=2.0)
        print(
            f"  server RSS: start {start:.1f} MB, with the clients {peak:.1f} MB, "
            f"after they left {after:.1f} MB "
            f"({(peak - start) * 1024 / max(1, args.clients):.0f} KB per client while there)"
        )
        print(f"  kernel TCP buffers with the clients (both ends): {kernel:.1f} MB")
        print(f"  healthy chat meanwhile: p50 {chat['chat_p50']:.1f} max {chat['chat_max']:.1f} ms")
        print(f"  server log: {log_summary(server)}")
    finally:
        server.close()


def measure_joins(args: argparse.Namespace) -> None:
    print(f"## joins: {args.joins} chat joins under one name")
    code = (
        "import time; from workshop_lib.chat.model import Room\n"
        f"room = Room(); t = time.perf_counter()\n"
        f"for _ in range({args.joins}): room.join('x')\n"
        "print(f'{time.perf_counter() - t:.3f}', room.users[-1])"
    )
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.source, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=args.source,  # `-c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    print(f"  {args.joins} joins as 'x' took {float(out[0]):.3f} s (the last got {out[1:]})")


# -- issue 25: clients that do not read, the SSE companion, /ball's controls ------------------


async def echo_trips(port: int, seconds: float) -> list[float]:
    """Round trips of a small echo, one at a time, for ``seconds``, in ms."""
    trips: list[float] = []
    async with learner(port, "/echo") as websocket:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            await websocket.send("ping")
            await websocket.recv()
            trips.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.01)
    return trips


def measure_pings(args: argparse.Namespace) -> dict[str, Any]:
    """A ping flood that never reads, on each route and before login: the server's growth."""
    print(f"## pings: one client floods pings for {args.flood_seconds:g} s and never reads")
    figures: dict[str, Any] = {}
    for label, path, login in (
        ("/echo", "/echo", False),
        ("/ball", "/ball", False),
        ("/chat", "/chat", False),
        ("before login", "/echo", True),
    ):
        server = RoomServer(args.source, args.server_args)
        try:
            quiet = asyncio.run(echo_trips(server.port, 2))  # warm up, and the quiet figure
            start = wait_for_rss(server)
            rude = Rude("ping", server.port, 1, path=path, login=login)
            with ThreadPoolExecutor(1) as pool:
                during = pool.submit(asyncio.run, echo_trips(server.port, args.flood_seconds))
                peak = start
                while not during.done():
                    peak = max(peak, server.rss_mb())
                    time.sleep(0.25)
                trips = during.result()
            peak = max(peak, server.rss_mb())
            flooded = rude.leave()
            row = {
                "pings_taken_mb": round(flooded / 2**20, 1),
                "grew_mb": round(peak - start, 1),
                "echo_p99_ms": round(percentile(trips, 0.99), 1),
                "echo_p99_quiet_ms": round(percentile(quiet, 0.99), 1),
            }
            figures[label] = row
            print(
                f"  {label:13} {row['pings_taken_mb']} MB of pings taken, "
                f"server +{row['grew_mb']:.1f} MB in {args.flood_seconds:g} s; "
                f"healthy echo p99 {row['echo_p99_ms']} ms (quiet {row['echo_p99_quiet_ms']} ms)"
            )
        finally:
            server.close()
    return figures


def _first_echo(port: int, deadline: float) -> float | None:
    """Seconds until a healthy client gets an echo (None: not before ``deadline``)."""
    started = time.monotonic()

    async def once() -> None:
        async with learner(port, "/echo") as websocket:
            await websocket.send("hi")
            await asyncio.wait_for(websocket.recv(), 5)

    while time.monotonic() < deadline:
        try:
            asyncio.run(once())
            return time.monotonic() - started
        except Exception:
            time.sleep(0.5)
    return None


def measure_primed(args: argparse.Namespace) -> dict[str, Any]:
    """Clients that send 131 KB of pings once and never read: how long they keep their place."""
    print(f"## primed: {args.primed} /echo clients send 131 KB of pings once, never read")
    server = RoomServer(args.source, [*args.server_args, f"--max-connections={args.primed}"])
    try:
        rude = Rude("primed", server.port, args.primed, path="/echo")
        opened = time.monotonic()
        print(f"  opened: {rude.statuses}")
        bound = opened + args.bound
        healthy_after = _first_echo(server.port, bound)
        open_now = server.get("/api/stats")["limits"]["open"]
        while open_now and time.monotonic() < bound:
            time.sleep(0.5)
            open_now = server.get("/api/stats")["limits"]["open"]
        gone_after = None if open_now else time.monotonic() - opened
        rude.leave()
        figures = {
            "healthy_echo_after_s": None if healthy_after is None else round(healthy_after, 1),
            "all_closed_after_s": None if gone_after is None else round(gone_after, 1),
            "still_open": open_now,
        }
        said = lambda v: f"{v} s" if v is not None else f"not within {args.bound:g} s"  # noqa: E731
        print(
            f"  the server full ({args.primed} = --max-connections): a healthy client's first "
            f"echo after {said(figures['healthy_echo_after_s'])}; every primed client closed "
            f"after {said(figures['all_closed_after_s'])} ({open_now} still open)"
        )
        print(f"  server log: {log_summary(server)}")
        return figures
    finally:
        server.close()


def serve_push(args: argparse.Namespace) -> None:
    """Child mode: a workshop server with its SSE companion; prints the ports, then answers
    each ``stats`` line on stdin with a ``STATS {json}`` line (:func:`memory_stats`), and
    stops when stdin closes. ``--uncapped``: no connection limits (memory, not caps, counts)."""
    from workshop_lib import start_server
    from workshop_lib.ball.http_push import serve_http_push

    caps = {"max_connections": 0, "max_per_address": 0} if args.uncapped else {}
    with (
        start_server(port=0, name="bench-push", **caps) as server,
        serve_http_push(server) as push,
    ):
        print(f"PORTS {server.port} {push.port}", flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print("STATS " + json.dumps(memory_stats(server)), flush=True)


def _pymalloc() -> dict[str, int]:
    """pymalloc's own account (``sys._debugmallocstats()``, which writes to fd 2)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found: dict[str, int] = {}
    for key, label in (
        ("arenas", "# arenas allocated current"),
        ("arenas_highwater", "# arenas highwater mark"),
        ("used_bytes", "# bytes in allocated blocks"),
    ):
        for line in text.splitlines():
            if line.startswith(label):
                found[key] = int(line.split("=")[1].replace(",", ""))
    return found


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks"),
            *("fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def _glibc() -> dict[str, float]:
    """glibc's heap (``mallinfo2``, glibc 2.33+): MB in use, and free but kept."""
    try:
        mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {
        "glibc_used_mb": round((info.uordblks + info.hblkhd) / 2**20, 1),
        "glibc_free_mb": round(info.fordblks / 2**20, 1),
    }


def _resident() -> dict[str, float]:
    """MB resident: anonymous memory in all, and the part in glibc's main heap (brk)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                found["anon_mb"] = round(int(line.split()[1]) / 1024, 1)
        mapping = ""
        for line in Path("/proc/self/smaps").read_text().splitlines():
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):  # a mapping's first line: "start-end perms ... name"
                mapping = line
            elif first == "Rss:" and mapping.endswith("[heap]"):
                found["heap_mb"] = round(int(line.split()[1]) / 1024, 1)
    return found


def memory_stats(server: Any) -> dict[str, Any]:
    """This process's memory and the app's trim state, read from the main thread."""
    app = server.app
    # The trim state first: a trim that runs while memory is read (the server's thread) is
    # then one the caller still waits for, never one these figures seem to come after.
    state = {"open": app.limits.open, "trims": app.trimmer.trims, "pending": app.trimmer.pending}
    return {
        "rss_mb": round(rss_bytes(os.getpid()) / 2**20, 1),
        **_resident(),
        **_pymalloc(),
        "blocks": sys.getallocatedblocks(),
        **_glibc(),
        **state,
    }


def measure_sse(args: argparse.Namespace) -> dict[str, Any]:
    """SSE streams that never read: how many are accepted; the server's memory after."""
    print(f"## sse: {args.streams} /ball/events streams that never read")
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.source, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-push"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=args.source,
    )
    try:
        assert proc.stdout is not None
        _, _, push_port = proc.stdout.readline().split()
        rss = lambda: rss_bytes(proc.pid) / 2**20  # noqa: E731
        time.sleep(1)
        start = rss()
        statuses: Counter[str] = Counter()
        streams = []
        for _ in range(args.streams):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            try:
                sock.connect(("127.0.0.1", int(push_port)))
                sock.sendall(b"GET /ball/events HTTP/1.1\r\nHost: x\r\n\r\n")
                first = sock.recv(64)
                statuses[first.split(b" ", 2)[1].decode() if first else "closed"] += 1
            except (OSError, IndexError) as exc:
                statuses[type(exc).__name__] += 1
            streams.append(sock)
        time.sleep(5)  # the streams run (and their buffers fill)
        peak = rss()
        for sock in streams:
            sock.close()
        time.sleep(8)  # a wave of closes settles, then the trim
        after = rss()
        figures = {
            "accepted": statuses.get("200", 0),
            "statuses": dict(statuses),
            "rss_start_mb": round(start, 1),
            "rss_with_mb": round(peak, 1),
            "rss_after_mb": round(after, 1),
        }
        print(
            f"  answers: {dict(statuses)}; RSS start {start:.1f} MB, with the streams "
            f"{peak:.1f} MB, 8 s after they closed {after:.1f} MB"
        )
        return figures
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


class PushServer:
    """:func:`serve_push` in a child process (uncapped): its ports, and its memory on request."""

    def __init__(self, source: str | None) -> None:
        env = dict(os.environ)
        if source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-push", "--uncapped"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=source,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORTS "):
            raise RuntimeError(f"the push server said {line!r}")
        self.port, self.push_port = map(int, line.split()[1:])

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("STATS "):
            raise RuntimeError(f"the push server said {line!r}")
        return json.loads(line[6:])

    def wait(self, done: Any, bound: float) -> dict[str, Any]:
        """Its stats once ``done(stats)`` holds (polled; RuntimeError after ``bound`` s)."""
        deadline = time.monotonic() + bound
        while not done(stats := self.stats()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not within {bound:g} s: {stats}")
            time.sleep(0.2)
        return stats

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_ECHOES = 16  # 1 KB text messages each /echo client sends, echoed to a client that never reads


def _wave(server: PushServer, kind: str, count: int, hold: float, bound: float) -> dict:
    """``count`` connections of ``kind`` that get some frames and never read, held ``hold`` s
    once all are open, then closed; the server's stats once every one is gone and the trim
    after the last close has run."""
    before = server.stats()["trims"]
    if kind == "sse":
        port, path = server.push_port, "/ball/events"
        request: bytes | None = b"GET /ball/events HTTP/1.1\r\nHost: x\r\n\r\n"
        payload = b""
    else:
        from websockets.frames import Frame, Opcode

        port, path, request = server.port, f"/{kind}", None
        text = Frame(Opcode.TEXT, b"e" * 1000).serialize(mask=True, extensions=[])
        payload = text * _ECHOES if kind == "echo" else b""
    opened, statuses = asyncio.run(
        open_many(port, path, count, [ATTACKER], payload, receive_buffer=4096, request=request)
    )
    server.wait(lambda s: s["open"] >= len(opened), bound)
    time.sleep(hold)  # frames flow meanwhile, and fill the buffers of clients that never read
    for sock in opened:
        sock.close()
    stats = server.wait(
        lambda s: s["open"] == 0 and s["pending"] == 0 and s["trims"] > before, bound
    )
    return {**stats, "answered": dict(statuses)}


def measure_plateau(args: argparse.Namespace) -> dict[str, Any]:
    """Waves of non-reading connections, SSE against the WebSocket routes: memory after each."""
    kinds = args.kinds.split(",")
    print(
        f"## plateau: {args.waves} waves of {args.wave} connections of each kind "
        f"({', '.join(kinds)}) that get frames for {args.hold:g} s, never read, then close; "
        "one server per kind; each row once the trim after the wave has run"
    )
    print(
        f"  {'kind':5} {'stage':7} {'RSS MB':>7} {'anon':>5} {'[heap]':>6} {'arenas':>6} "
        f"{'pymalloc used MB':>16} {'blocks':>8} {'glibc used/free MB':>18}"
    )
    figures: dict[str, Any] = {}
    for kind in kinds:
        server = PushServer(args.source)
        try:
            time.sleep(1)  # the ball ticks; the loop settles (the start's figure)
            rows = [{"stage": "start", **server.stats()}]
            for n in range(1, args.waves + 1):
                rows.append(
                    {"stage": f"wave {n}", **_wave(server, kind, args.wave, args.hold, args.bound)}
                )
        finally:
            server.close()
        nan = float("nan")
        for row in rows:
            print(
                f"  {kind:5} {row['stage']:7} {row['rss_mb']:7.1f} {row.get('anon_mb', nan):5.1f} "
                f"{row.get('heap_mb', nan):6.1f} {row.get('arenas', -1):6d} "
                f"{row.get('used_bytes', 0) / 2**20:16.1f} {row['blocks']:8d} "
                f"{row.get('glibc_used_mb', nan):8.1f}/{row.get('glibc_free_mb', nan):<9.1f}"
                + (f" answered {row['answered']}" if "answered" in row else "")
            )
        figures[kind] = {
            row["stage"]: {
                k: row[k] for k in ("rss_mb", "anon_mb", "heap_mb", "arenas", "blocks") if k in row
            }
            for row in rows
        }
    return figures


def measure_controls(args: argparse.Namespace) -> dict[str, Any]:
    """The ball's frame rate for a healthy viewer while 3 clients flood /ball with controls."""
    print("## controls: 3 clients flood /ball with ball.control, the ball for everyone")
    server = RoomServer(args.source, args.server_args)
    try:
        quiet = asyncio.run(watch_ball(server.port, 4))
        rude = Rude("control", server.port, 3)
        loaded = asyncio.run(watch_ball(server.port, 6))
        rude.leave()
        figures = {
            "fps_quiet_median": quiet["fps_median"],
            "fps_worst": loaded["fps_worst"],
            "fps_median": loaded["fps_median"],
        }
        print(
            f"  fps: quiet median {quiet['fps_median']}; flooded worst {loaded['fps_worst']} "
            f"median {loaded['fps_median']}"
        )
        print(f"  server log: {log_summary(server)}")
        return figures
    finally:
        server.close()


def side_by_side(before_file: str, after_file: str) -> None:
    """Two runs' figures (``--json``), before and after, one line each."""
    before = json.loads(Path(before_file).read_text())
    after = json.loads(Path(after_file).read_text())

    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(tree, dict) and tree and not {"200", "503"} & set(tree):
            out: dict[str, Any] = {}
            for key, value in tree.items():
                out.update(flat(value, f"{prefix}{key} / " if prefix or key else key))
            return out
        return {prefix.rstrip(" /"): tree}

    b, a = flat(before), flat(after)
    width = max(map(len, [*b, *a]), default=10)
    print(f"{'figure':{width}}  {'before':>22}  {'after':>22}")
    for key in [*b, *(k for k in a if k not in b)]:
        print(f"{key:{width}}  {b.get(key)!s:>22}  {a.get(key)!s:>22}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", help="run the server from this tree (PYTHONPATH)")
    parser.add_argument(
        "--only",
        default="ball,memory,joins",
        help="ball,memory,joins (issue 14); pings,primed,sse,controls,plateau (issue 25)",
    )
    parser.add_argument("--connections", type=int, default=2000, help="/ball flood (2000)")
    parser.add_argument("--clients", type=int, default=500, help="non-reading /echo (500)")
    parser.add_argument("--messages", type=int, default=20, help="60 KB each, per client (20)")
    parser.add_argument("--joins", type=int, default=2000, help="same-name joins (2000)")
    parser.add_argument(
        "--server-arg",
        dest="server_args",
        action="append",
        default=[],
        help="one more argument for `serve` (repeatable), e.g. --server-arg=--max-connections=0",
    )
    parser.add_argument(
        "--flood-seconds", type=float, default=10, help="each ping flood's length (10)"
    )
    parser.add_argument("--primed", type=int, default=1000, help="primed non-readers (1000)")
    parser.add_argument("--streams", type=int, default=3000, help="SSE non-readers (3000)")
    parser.add_argument("--bound", type=float, default=60, help="longest wait, s (60)")
    parser.add_argument("--waves", type=int, default=3, help="plateau: waves per kind (3)")
    parser.add_argument("--wave", type=int, default=1000, help="plateau: connections a wave")
    parser.add_argument("--hold", type=float, default=3, help="plateau: s a wave stays (3)")
    parser.add_argument(
        "--kinds", default="sse,ball,echo", help="plateau: sse, ball, echo (all three)"
    )
    parser.add_argument("--json", help="write the issue-25 figures to this file")
    parser.add_argument(
        "--side-by-side", nargs=2, metavar=("BEFORE", "AFTER"), help="print two --json files"
    )
    parser.add_argument(
        "--rude", choices=["ball", "memory", "ping", "primed", "control"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/echo", help=argparse.SUPPRESS)
    parser.add_argument("--login", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-push", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uncapped", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rude:
        rude_clients(args)
        return 0
    if args.serve_push:
        serve_push(args)
        return 0
    if args.side_by_side:
        side_by_side(*args.side_by_side)
        return 0
    raise_fd_limit()
    print_header(f"hardening probes (server from {args.source or 'this checkout'})")
    measures = {
        "ball": measure_ball,
        "memory": measure_memory,
        "joins": measure_joins,
        "pings": measure_pings,
        "primed": measure_primed,
        "sse": measure_sse,
        "controls": measure_controls,
        "plateau": measure_plateau,
    }
    figures = {name: measures[name](args) for name in args.only.split(",")}
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in figures.items() if v}, indent=1))
    return 0


if __name__ == "__main__":
    run_main(main)
