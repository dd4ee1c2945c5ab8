"""Echo round-trip latency through the workshop server, against a bare websockets echo server.

    python bench/echo_latency.py                          # 40 rounds x 500 round trips each
    python bench/echo_latency.py --rounds 20 --count 5000 --size 1024

Both servers run in processes of their own, started by this script (``--serve-workshop`` and
``--serve-bare``), so neither shares a GIL or a CPU-hungry loop with the client. The client
keeps one connection to each, sends one message at a time and waits for its echo, and
alternates short rounds between the two servers (in ABBA order) so that drift on the machine,
such as a CPU heating up or a neighbour's burst of work, falls on both alike: on a busy
2-CPU machine 40 rounds of 500 gave steadier p99 ratios than 10 rounds of 2,000.

The goal: the workshop server's p50 and p99 stay within 1.25x of the bare server's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import queue
import random
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field

from _common import HOST, percentile, print_header, run_main, wait_for_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError

GOAL = 1.25  # workshop/bare, for p50 and p99
SERVERS = ("workshop", "bare")
# --aa puts a second bare server in the workshop server's place: the ratios then show how
# much two identical servers differ on this machine, which is the noise floor of the goal.
AA_LABELS = {"workshop": "bare #2", "bare": "bare"}
LABELS = {name: name for name in SERVERS}
MAX_SIZE = 64 * 1024  # the workshop server refuses larger messages (workshop_lib.app.app)


# -- the two servers, each run in a child process ----------------------------------------------


def _announce(port: int) -> None:
    # The parent reads this line to learn the port: no race for a port chosen in advance.
    print(f"PORT {port}", flush=True)


def serve_workshop(port: int) -> None:
    """Run the workshop server until stdin closes (the parent closes it, or dies)."""
    from workshop_lib import start_server

    server = start_server(port=port, name="bench-echo")
    try:
        _announce(server.port)
        sys.stdin.buffer.read()  # returns at EOF
    finally:
        server.stop()


async def _bare_echo(websocket: ServerConnection) -> None:
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosedError:
        pass  # the client was interrupted: as quiet as the workshop server (workshop_lib.app.app)


async def _serve_bare(port: int) -> None:
    # Like the workshop server (workshop_lib/app/app.py): no permessage-deflate.
    async with serve(_bare_echo, HOST, port, compression=None) as server:
        _announce(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(sys.stdin.buffer.read)  # returns at EOF


def serve_bare(port: int) -> None:
    """Run a bare websockets echo server until stdin closes."""
    asyncio.run(_serve_bare(port))


# -- starting and stopping the children --------------------------------------------------------


@contextmanager
def child_server(kind: str, timeout: float = 15.0) -> Iterator[int]:
    """Start ``--serve-<kind>`` in a child process, wait until it answers, yield its port."""
    # A session of its own: Ctrl-C in the terminal reaches only this process, whose
    # `finally` then stops the child in order. If this process dies outright, the child's
    # stdin reaches EOF and it exits by itself.
    proc = subprocess.Popen(
        [sys.executable, __file__, f"--serve-{kind}", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        port = _read_port(proc, timeout)
        wait_for_port(port, timeout=timeout)
        if kind == "workshop":
            _check_health(port, proc.pid)
        yield port
    finally:
        _stop_child(proc)


def _read_port(proc: subprocess.Popen[str], timeout: float) -> int:
    stdout = proc.stdout
    assert stdout is not None
    # readline() on a thread, because select() cannot wait on a pipe on Windows. If the
    # child hangs, the thread ends when _stop_child() closes the pipe.
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if not line.startswith("PORT "):
        raise RuntimeError(
            f"server process {proc.args!r} did not report its port within {timeout} s "
            f"(exit code {proc.poll()}, said {line!r}); its errors are above"
        )
    return int(line.split()[1])


def _check_health(port: int, pid: int) -> None:
    # Make sure the figures are the workshop server's, not some other program's on that port.
    with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=5) as reply:
        health = json.loads(reply.read())
    if health.get("server") != "workshop_lib" or health.get("pid") != pid:
        raise RuntimeError(f"port {port} is not our workshop server: /healthz said {health}")


def _stop_child(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the polite way: the child stops its server and exits
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


# -- the client ------------------------------------------------------------------------------


@dataclass
class Series:
    """Every round-trip time (ns) measured against one server, and each round's p50."""

    samples: list[int] = field(default_factory=list)
    round_p50s: list[int] = field(default_factory=list)


async def _round_trips(websocket: ClientConnection, message: str, count: int) -> list[int]:
    clock = time.perf_counter_ns
    send, recv = websocket.send, websocket.recv
    times: list[int] = []
    for _ in range(count):
        start = clock()
        await send(message)
        reply = await recv()
        times.append(clock() - start)
        if reply != message:
            raise RuntimeError(f"the echo changed the message: {reply!r} != {message!r}")
    return times


async def measure(
    ports: dict[str, int],
    rounds: int,
    count: int,
    size: int,
    warmup: int,
    labels: dict[str, str] = LABELS,
) -> dict[str, Series]:
    """Alternate ``rounds`` rounds of ``count`` round trips per server, after a warm-up."""
    # Random letters rather than one repeated character: nothing about the payload is
    # special, and with permessage-deflate a run of "x" would compress to almost nothing.
    message = "".join(random.Random(0).choices(string.ascii_letters + string.digits, k=size))
    results = {name: Series() for name in SERVERS}
    async with AsyncExitStack() as stack:
        sockets = {
            name: await stack.enter_async_context(connect(f"ws://{HOST}:{ports[name]}/echo"))
            for name in SERVERS
        }
        extensions = {name: _extensions(ws) for name, ws in sockets.items()}
        for name in SERVERS:
            url = f"ws://{HOST}:{ports[name]}/echo"
            print(f"{labels[name]:9} {url}  extensions: {extensions[name]}")
        if extensions["workshop"] != extensions["bare"]:
            print("warning: the two servers negotiated different extensions")
        print()

        for name in SERVERS:
            await _round_trips(sockets[name], message, warmup)
        for number in range(rounds):
            # ABBA: each server goes first in every other round.
            order = SERVERS if number % 2 == 0 else SERVERS[::-1]
            for name in order:
                # A collection in the middle of a round would be the client's pause, not
                # the server's: collect before, and not during.
                gc.collect()
                gc.disable()
                try:
                    times = await _round_trips(sockets[name], message, count)
                finally:
                    gc.enable()
                results[name].samples.extend(times)
                results[name].round_p50s.append(int(percentile(times, 0.5)))
    return results


def _extensions(websocket: ClientConnection) -> str:
    # Same negotiated extensions on both sides, or the comparison is not like for like.
    headers = websocket.response.headers if websocket.response else {}
    return headers.get("Sec-WebSocket-Extensions", "none")


# -- the report ------------------------------------------------------------------------------


def report(results: dict[str, Series], labels: dict[str, str] = LABELS, goal: float = GOAL) -> bool:
    """Print the table and the ratios; return True if both ratios meet the goal."""
    stats: dict[str, dict[str, float]] = {}
    print(
        f"{'server':9} {'samples':>8} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8} "
        f"{'min µs':>7}  round p50s µs (min-max)"
    )
    for name in SERVERS:
        series = results[name]
        samples = series.samples
        stats[name] = {
            "p50": percentile(samples, 0.50) / 1000,
            "p99": percentile(samples, 0.99) / 1000,
            "mean": statistics.fmean(samples) / 1000,
        }
        s = stats[name]
        print(
            f"{labels[name]:9} {len(samples):>8,} {s['p50']:>8.1f} {s['p99']:>8.1f} "
            f"{s['mean']:>8.1f} {min(samples) / 1000:>7.1f}  "
            f"{min(series.round_p50s) / 1000:.1f}-{max(series.round_p50s) / 1000:.1f}"
        )
    print()
    passed = True
    for key in ("p50", "p99"):
        ratio = stats["workshop"][key] / stats["bare"][key]
        verdict = "PASS" if ratio <= goal else "MISS"
        passed &= ratio <= goal
        ratio_name = "/".join(labels[name] for name in SERVERS)
        print(f"{ratio_name} {key}: {ratio:.2f}x   goal ≤ {goal:.2f}x   {verdict}")
    return passed


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run a server (child mode) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds per server (40)")
    parser.add_argument("--count", type=int, default=500, help="round trips per round (500)")
    parser.add_argument("--size", type=int, default=32, help="message size in bytes (32)")
    parser.add_argument("--warmup", type=int, default=1000, help="round trips per server first")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a ratio misses")
    parser.add_argument(
        "--aa", action="store_true", help="A/A run: bare vs bare, to see the noise floor"
    )
    child = parser.add_mutually_exclusive_group()
    child.add_argument("--serve-workshop", type=int, metavar="PORT", help="(child) 0 = any")
    child.add_argument("--serve-bare", type=int, metavar="PORT", help="(child) 0 = any")
    args = parser.parse_args(argv)

    if args.serve_workshop is not None:
        serve_workshop(args.serve_workshop)
        return 0
    if args.serve_bare is not None:
        serve_bare(args.serve_bare)
        return 0
    if not 1 <= args.size <= MAX_SIZE:
        parser.error(f"--size must be 1..{MAX_SIZE} (the workshop server's max_size)")
    if args.rounds < 1 or args.count < 1 or args.warmup < 0:
        parser.error("--rounds and --count must be at least 1, --warmup at least 0")

    print_header("echo round-trip latency: workshop server vs bare websockets")
    print(
        f"{args.rounds} rounds x {args.count:,} round trips per server, "
        f"{args.size}-byte text messages, one in flight, after {args.warmup:,} warm-up each\n"
    )
    started = time.monotonic()
    labels = AA_LABELS if args.aa else LABELS
    with ExitStack() as stack:
        ports = {
            name: stack.enter_context(child_server("bare" if args.aa else name)) for name in SERVERS
        }
        results = asyncio.run(
            measure(ports, args.rounds, args.count, args.size, args.warmup, labels)
        )
    passed = report(results, labels)
    print(f"\n({time.monotonic() - started:.1f} s)")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    run_main(main)
