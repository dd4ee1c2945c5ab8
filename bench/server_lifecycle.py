"""Start, stop and restart workshop servers in one process: how fast, and does anything leak?

    python bench/server_lifecycle.py                   # 50 start/stop cycles, 20 restarts
    python bench/server_lifecycle.py --iterations 200 --restarts 50

A notebook starts a server in a cell and learners re-run that cell, so starting must feel
instant (goal: p50 ≤ 50 ms), a restart on the same port must never meet "address already in
use", re-running ``start_server()`` with the same name must replace the old server, and at the
end no thread may be left behind. Every restart is followed by one echo through a fresh
client. Functional failures exit 1; ``--strict`` also exits 1 when a timing goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from _common import HOST, free_port, percentile, print_header
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from workshop_lib import PortInUseError, WorkshopServer, running_servers, start_server
from workshop_lib.server.loop import LoopThread

START_GOAL_MS = 50.0
H = TypeVar("H")  # a server handle: WorkshopServer or BareServer


class Failures:
    """Collects what went wrong, so that one run reports every problem, not just the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.messages.append(message)
            print(f"  FAIL: {message}")
        return ok


# -- a bare baseline: websockets' serve() on a loop of its own thread --------------------------


async def _echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


class BareServer:
    """The least a background-thread server needs: a thread, ``asyncio.run()``, ``serve()``.

    Usage: ``bare = BareServer(); bare.start(); ...; bare.stop()``.
    """

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="bench-bare", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("bare server did not start")
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        assert self._loop is not None and self._stopping is not None
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to start(), in the caller's thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        # `async with` closes the server (and its connections) on the way out, as stop() does.
        async with serve(_echo, HOST, 0):
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            self._ready.set()
            await self._stopping.wait()


# -- measurements ------------------------------------------------------------------------------


def _ms(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e6


def time_cycles(
    start: Callable[[], H], stop: Callable[[H], None], iterations: int
) -> tuple[list[float], list[float]]:
    """Start and stop ``iterations`` times; return the start and stop times in ms."""
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        handle = start()
        t1 = time.perf_counter_ns()
        stop(handle)
        t2 = time.perf_counter_ns()
        starts.append(_ms(t0, t1))
        stops.append(_ms(t1, t2))
    return starts, stops


def _start_bare() -> BareServer:
    bare = BareServer()
    bare.start()
    return bare


def _row(label: str, times: list[float]) -> str:
    # No p99: with 50 samples it would just be the maximum again.
    return f"  {label:16} {times[0]:>8.2f} {percentile(times, 0.5):>8.2f} {max(times):>8.2f}"


async def _echo_once(url: str, text: str) -> str:
    async with connect(url, open_timeout=5) as websocket:
        await websocket.send(text)
        return str(await asyncio.wait_for(websocket.recv(), 5))


async def _open(url: str) -> ClientConnection:
    # connect() is awaitable but not a coroutine, and run_coroutine_threadsafe wants one.
    return await connect(url, open_timeout=5)


def echo_works(server: WorkshopServer, failures: Failures, label: str) -> bool:
    """One round trip through a fresh client: proof that the server really serves."""
    text = f"ping {label}"
    try:
        reply = asyncio.run(_echo_once(server.links.ws("/echo"), text))
    except (OSError, TimeoutError, ConnectionClosed) as exc:
        return failures.check(False, f"{label}: echo failed: {type(exc).__name__}: {exc}")
    return failures.check(reply == text, f"{label}: echo returned {reply!r}, not {text!r}")


def restarts(port: int, count: int, failures: Failures) -> list[float]:
    """``start_server(port=port)`` then ``stop()``, ``count`` times; return start times (ms)."""
    times: list[float] = []
    for i in range(count):
        t0 = time.perf_counter_ns()
        try:
            server = start_server(port=port, name="bench-fixed")
        except OSError as exc:  # PortInUseError is the one this phase is about
            failures.check(False, f"restart {i}: {type(exc).__name__}: {exc}")
            continue
        times.append(_ms(t0, time.perf_counter_ns()))
        echo_works(server, failures, f"restart {i}")
        server.stop()
    return times


def replacements(port: int, count: int, failures: Failures) -> list[float]:
    """Re-call ``start_server(port=port)`` with one name and no stop(), as a re-run cell does."""
    times: list[float] = []
    previous: WorkshopServer | None = None
    for i in range(count):
        t0 = time.perf_counter_ns()
        try:
            server = start_server(port=port, name="bench-replace")
        except OSError as exc:
            failures.check(False, f"replace {i}: {type(exc).__name__}: {exc}")
            continue
        times.append(_ms(t0, time.perf_counter_ns()))
        if previous is not None:
            failures.check(not previous.running, f"replace {i}: the previous server still runs")
        failures.check(server.port == port, f"replace {i}: port {server.port}, not {port}")
        echo_works(server, failures, f"replace {i}")
        previous = server
    if previous is not None:
        previous.stop()
    return times


def taken_port_is_refused(port: int, failures: Failures) -> None:
    """Another name on a port in use must raise PortInUseError and leave no thread behind."""
    holder = start_server(port=port, name="bench-holder")
    threads_before = threading.active_count()
    try:
        start_server(port=port, name="bench-intruder")
    except PortInUseError as exc:
        print(f"  PortInUseError as expected: {exc}")
    except Exception as exc:
        failures.check(False, f"taken port: {type(exc).__name__} instead of PortInUseError")
    else:
        failures.check(False, "taken port: a second server started on a port in use")
    failures.check(
        threading.active_count() == threads_before,
        "taken port: the refused server left its loop thread running",
    )
    echo_works(holder, failures, "holder after the refusal")
    holder.stop()


def stop_with_client(failures: Failures) -> None:
    """How long stop() takes with one client connected, from another loop and from our own.

    Informational. A notebook cell runs on the kernel's loop: a client opened there with
    ``await connect(...)`` cannot answer the server's closing handshake while the cell
    blocks in ``stop()``, so stop() waits for the server's close_timeout.
    """
    url_path = "/echo"

    # The client on a loop of its own thread: it answers the close at once.
    server = start_server(port=0, name="bench-client")
    client_loop = LoopThread("bench-client-loop")
    client_loop.start()
    try:
        websocket = client_loop.run(_open(server.links.ws(url_path)))
        t0 = time.perf_counter_ns()
        server.stop()
        elsewhere = _ms(t0, time.perf_counter_ns())
        client_loop.run(websocket.close())
        failures.check(
            websocket.close_code == 1001,
            f"stop() with a client: close code {websocket.close_code}, not 1001",
        )
    finally:
        server.stop()
        client_loop.stop()

    # The client on the caller's own loop, as with a top-level await in a notebook.
    async def on_own_loop() -> float:
        server = start_server(port=0, name="bench-client")
        async with connect(server.links.ws(url_path)) as websocket:
            t0 = time.perf_counter_ns()
            server.stop()  # blocks this loop, so the client cannot answer the close
            elapsed = _ms(t0, time.perf_counter_ns())
            with contextlib.suppress(ConnectionClosed):
                await websocket.recv()  # the 1001 close, now that this loop runs again
            failures.check(
                websocket.close_code == 1001,
                f"stop() with a client on our loop: close code {websocket.close_code}, not 1001",
            )
        return elapsed

    own = asyncio.run(on_own_loop())
    print(f"  client on another thread's loop   {elsewhere:>8.1f} ms")
    print(f"  client on the caller's own loop   {own:>8.1f} ms  (≈ close_timeout: see docstring)")


def _phase_summary(times: list[float], count: int, clean: bool, what: str) -> None:
    verdict = "every echo answered" if clean else "FAILED (see above)"
    line = f"  {len(times)}/{count} started, {verdict}"
    if times:
        line += f"; {what} p50 {percentile(times, 0.5):.2f} ms, max {max(times):.2f} ms"
    print(line)


def open_fds() -> int | None:
    """How many file descriptors this process has open (Linux only, else None)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def leftovers(failures: Failures, fds_at_start: int | None) -> None:
    """Only the main thread may be left, no server registered, no socket left open."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if failures.check(not others, f"threads left: {[t.name for t in others]}"):
        print("  only MainThread is left")
    servers = running_servers()
    if failures.check(not servers, f"servers still registered: {servers}"):
        print("  no server is registered")
    fds = open_fds()
    if fds is None or fds_at_start is None:
        return
    # A loop that was never closed, or a listening socket, would show up here.
    if failures.check(fds <= fds_at_start, f"open fds: {fds_at_start} at start, {fds} now"):
        print(f"  open file descriptors: {fds_at_start} at start, {fds} now")


def main(argv: list[str] | None = None) -> int:
    """Run every phase and print its figures; the exit code says whether anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50, help="start/stop cycles (50)")
    parser.add_argument("--restarts", type=int, default=20, help="restarts on a fixed port (20)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare baseline")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a timing goal misses")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.restarts < 1:
        parser.error("--iterations and --restarts must be at least 1")

    print_header("server lifecycle: start, stop, restart, replace")
    failures = Failures()
    started = time.monotonic()
    fds_at_start = open_fds()

    print(f"start_server(port=0) / stop(), {args.iterations} cycles (ms)")
    print(f"  {'':16} {'first':>8} {'p50':>8} {'max':>8}")
    starts, stops = time_cycles(
        lambda: start_server(port=0, name="bench-cycle"),
        lambda server: server.stop(),
        args.iterations,
    )
    print(_row("workshop start", starts))
    print(_row("workshop stop", stops))
    if not args.no_bare:
        bare_starts, bare_stops = time_cycles(_start_bare, BareServer.stop, args.iterations)
        print(_row("bare start", bare_starts))
        print(_row("bare stop", bare_stops))
    start_p50 = percentile(starts, 0.5)
    timing_ok = start_p50 <= START_GOAL_MS
    print(
        f"  workshop start p50 {start_p50:.2f} ms, goal ≤ {START_GOAL_MS:.0f} ms: "
        f"{'PASS' if timing_ok else 'MISS'}"
    )

    port = free_port()
    print(
        f"\nrestart on fixed port {port}: start_server(port={port}) / echo / stop(), "
        f"{args.restarts} times"
    )
    before = len(failures.messages)
    times = restarts(port, args.restarts, failures)
    _phase_summary(times, args.restarts, len(failures.messages) == before, "start")

    print(
        f"\nreplace on fixed port {port}: start_server(port={port}) again without stop() "
        f"/ echo, {args.restarts} times"
    )
    before = len(failures.messages)
    times = replacements(port, args.restarts, failures)
    _phase_summary(
        times, args.restarts, len(failures.messages) == before, "start (incl. stopping the old)"
    )

    print(f"\nanother name on port {port} while it is in use")
    taken_port_is_refused(port, failures)

    print("\nstop() with one client connected")
    stop_with_client(failures)

    print("\nleft over at the end")
    leftovers(failures, fds_at_start)

    print(f"\n({time.monotonic() - started:.1f} s)")
    if failures.messages:
        print(f"{len(failures.messages)} failure(s)", file=sys.stderr)
        return 1
    return 1 if args.strict and not timing_ok else 0


if __name__ == "__main__":
    sys.exit(main())
