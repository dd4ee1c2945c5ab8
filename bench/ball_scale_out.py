"""The 60 Hz ball to many cheap readers: bare broadcast(), one workshop process, two on Redis.

    python bench/ball_scale_out.py                        # 1,000 clients, 8 s per run
    python bench/ball_scale_out.py --clients 300 --configs bare,one --loops asyncio,uvloop
    python bench/ball_scale_out.py --seconds 30           # the issue's run, longer windows

Each configuration runs in turn, in this one invocation, against the same readers:

- ``bare``: websockets' ``serve()`` and the ball's drift-free ticker calling plain
  ``websockets.broadcast()`` (``bench/ball_fanout.py --serve-bare``; no other workshop code);
- ``one``: one ``python -m workshop_lib serve`` process, in memory;
- ``two``: two ``serve --redis`` processes on one ``redis-server`` (one ticks under the
  lease, both relay), the clients split evenly between them;
- ``floor`` (not in the default run): the bare server writing the frame, serialized once,
  with one ``transport.write()`` per connection and no check at all: what no fan-out on
  websockets' connections can beat, the ``send()`` system call and asyncio's write.

``--loops asyncio,uvloop`` runs each configuration on each server event loop (``serve
--loop``, and the bare server's ``--loop``). The clients are ``bench/_readers.py`` readers
(a protocol per connection, frames parsed from raw reads), in ``--reader-procs`` child
processes on uvloop when it is installed: websockets' asyncio client costs ~40 µs per frame,
and 60,000 frames a second would need more cores than the machine has.

Figures per run: frames delivered per second, the worst and median client's share of the
ticks (goal: every client ≥ 95 % at 60 Hz), delay from the server's stamp to the read
(p50/p99), server CPU (each process, and redis-server's) and server CPU per delivered frame,
with its ratio to bare ``broadcast()`` on asyncio's loop in the same invocation. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar

sys.path.insert(0, os.path.dirname(__file__))

from _common import HOST, child, cpu_seconds, print_header, raise_fd_limit, run_main
from _readers import Reader, open_readers, run_fast

RATE = 60.0
SHARE_GOAL = 0.95
LEAD = 1.0  # s between GO and the window's start: every reader process has read the line
BALL_FANOUT = os.path.join(os.path.dirname(__file__), "ball_fanout.py")


# -- the readers' side (a child process) -------------------------------------------------------


class BallReader(Reader):
    """Counts new ticks and their delay inside the window; nothing is kept per frame."""

    window: ClassVar[tuple[float, float]] = (0.0, 0.0)
    delays: ClassVar[dict[int, int]] = {}  # 0.1 ms bins, shared by the process's readers

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.frames = self.distinct = 0
        self.first = self.last = -1

    def on_message(self, payload: bytes, now: float) -> None:
        start, end = self.window
        if not start <= now < end:
            return
        # Compact JSON with "tick" second and "ts" last: two finds, no json.loads.
        i = payload.find(b'"tick":') + 7
        tick = int(payload[i : payload.find(b",", i)])
        key = int((now - float(payload[payload.rfind(b":") + 1 : -1])) * 10_000)
        delays = self.delays
        delays[key] = delays.get(key, 0) + 1
        self.frames += 1
        if tick > self.last:
            self.distinct += 1
            if self.first < 0:
                self.first = tick
            self.last = tick


async def _read_ball(urls: list[str], count: int) -> None:
    readers = await open_readers(BallReader, urls, count, timeout=120)
    print(f"READY {len(readers)}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    start, end = (float(v) for v in line.split()[1:3])
    BallReader.window = (start, end)
    await asyncio.sleep(max(0.0, end - time.time()) + 0.2)
    result = {
        "distinct": [r.distinct for r in readers],
        "frames": sum(r.frames for r in readers),
        "span": max((r.last - r.first for r in readers if r.first >= 0), default=0),
        "closed": sum(1 for r in readers if r.closed.done()),
        "errors": sum(r.errors for r in readers),
        "delays": BallReader.delays,
    }
    print("RESULT " + json.dumps(result), flush=True)
    for reader in readers:
        reader.close()
    await asyncio.wait([r.closed for r in readers], timeout=5)


def readers_main(urls: list[str], count: int) -> None:
    raise_fd_limit()
    run_fast(_read_ball(urls, count))


# -- the parent: servers, readers, the window -------------------------------------------------


@dataclass
class Run:
    config: str
    loop: str
    clients: int
    seconds: float
    server_cpu: list[float] = field(default_factory=list)  # s, each server process
    redis_cpu: float | None = None
    reader_cpu: float = 0.0  # s, all reader processes
    distinct: list[int] = field(default_factory=list)
    frames: int = 0
    span: int = 0
    closed: int = 0
    errors: int = 0
    delays: dict[int, int] = field(default_factory=dict)
    # Per server process (workshop configs): its readers' distinct ticks, and its ball stats.
    by_server: list[list[int]] = field(default_factory=list)
    server_stats: list[dict[str, Any]] = field(default_factory=list)

    @property
    def us_per_frame(self) -> float:
        return 1e6 * sum(self.server_cpu) / self.frames if self.frames else float("nan")

    def share(self, which: str) -> float:
        ticks = RATE * self.seconds
        pick = min if which == "worst" else statistics.median
        return pick(self.distinct) / ticks if self.distinct else 0.0

    def delay_ms(self, q: float) -> float:
        total = sum(self.delays.values())
        if not total:
            return float("nan")
        seen = 0
        for key in sorted(self.delays):
            seen += self.delays[key]
            if seen >= q * total:
                return key / 10
        return float("nan")


def _start_servers(stack: ExitStack, config: str, loop: str, redis_url: str | None) -> list[Any]:
    """Start ``config``'s servers; return ``(urls, pids, ServerProcess objects or [])``."""
    from workshop_lib.server.processes import ServerProcess

    if config in ("bare", "floor"):
        argv = ["--serve-bare", "--loop", loop] + (["--floor"] if config == "floor" else [])
        bare = stack.enter_context(child(BALL_FANOUT, argv, config))
        port = int(bare.expect("PORT ", 30))
        return [[f"ws://{HOST}:{port}/"], [bare.pid], []]
    count = 1 if config == "one" else 2
    limits = ["--max-connections", "0", "--max-per-address", "0", "--loop", loop]
    servers = [
        stack.enter_context(ServerProcess(redis=redis_url if count > 1 else None, args=limits))
        for _ in range(count)
    ]
    return [[s.ws("/ball") for s in servers], [s.pid for s in servers], servers]


def measure(config: str, loop: str, args: argparse.Namespace, redis: Any) -> Run:
    run = Run(config, loop, args.clients, args.seconds)
    with ExitStack() as stack:
        urls, pids, servers = _start_servers(stack, config, loop, redis.url if redis else None)
        run.by_server = [[] for _ in urls]
        share = [args.clients // args.reader_procs] * args.reader_procs
        share[0] += args.clients - sum(share)
        procs = []
        for i, n in enumerate(share):
            # Each process spreads its readers over every server, so each gets half of each.
            argv = ["--read", ",".join(urls), "--count", str(n)]
            procs.append(stack.enter_context(child(__file__, argv, f"readers {i}")))
        for proc in procs:
            proc.expect("READY ", 180)
        time.sleep(1.0)  # the last handshakes' first frames, and a tick or two, settle
        start = time.time() + LEAD
        end = start + args.seconds
        for proc in procs:
            proc.send(f"GO {start} {end}")
        time.sleep(max(0.0, start - time.time()))
        server0 = [cpu_seconds(p) for p in pids]
        redis0 = cpu_seconds(redis.process.pid) if config == "two" else None
        readers0 = [cpu_seconds(p.pid) for p in procs]
        time.sleep(max(0.0, end - time.time()))
        run.server_cpu = [cpu_seconds(p) - c for p, c in zip(pids, server0, strict=True)]
        if redis0 is not None:
            run.redis_cpu = cpu_seconds(redis.process.pid) - redis0
        run.reader_cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(procs, readers0, strict=True))
        run.server_stats = [server.stats().get("ball", {}) for server in servers]
        for proc in procs:
            result = json.loads(proc.expect("RESULT ", 30))
            run.distinct += result["distinct"]
            for i, distinct in enumerate(result["distinct"]):  # open_readers: round-robin
                run.by_server[i % len(urls)].append(distinct)
            run.frames += result["frames"]
            run.span = max(run.span, result["span"])
            run.closed += result["closed"]
            run.errors += result["errors"]
            for key, n in result["delays"].items():
                run.delays[int(key)] = run.delays.get(int(key), 0) + n
    return run


HEAD = (
    f"{'server':14} {'loop':7} {'clients':>7} {'frames/s':>8} {'worst':>6} {'median':>6} "
    f"{'p50 ms':>6} {'p99 ms':>7} {'server CPU':>13} {'redis':>5} {'readers':>7} "
    f"{'µs/frame':>8} {'vs bare':>7}"
)
NAMES = {
    "bare": "bare broadcast",
    "floor": "floor (writes)",
    "one": "workshop x1",
    "two": "workshop x2+R",
}


def row(run: Run, anchor: float | None) -> str:
    wall = run.seconds
    cpu = "+".join(f"{100 * c / wall:.0f}%" for c in run.server_cpu)
    redis = f"{100 * run.redis_cpu / wall:.0f}%" if run.redis_cpu is not None else "-"
    ratio = f"{run.us_per_frame / anchor:.2f}x" if anchor else "-"
    line = (
        f"{NAMES[run.config]:14} {run.loop:7} {run.clients:>7} {run.frames / wall:>8.0f} "
        f"{100 * run.share('worst'):>5.1f}% {100 * run.share('median'):>5.1f}% "
        f"{run.delay_ms(0.5):>6.1f} {run.delay_ms(0.99):>7.1f} {cpu:>13} {redis:>5} "
        f"{100 * run.reader_cpu / wall:>6.0f}% {run.us_per_frame:>8.1f} {ratio:>7}"
    )
    if run.closed or run.errors:
        line += f"  ({run.closed} closed, {run.errors} protocol errors)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0, help="window per run (8)")
    parser.add_argument("--configs", default="bare,one,two", help="bare,floor,one,two")
    parser.add_argument("--loops", default="asyncio", help="asyncio,uvloop")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every run (1)")
    parser.add_argument("--reader-procs", type=int, default=2, help="reader processes (2)")
    parser.add_argument("--read", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        readers_main(args.read.split(","), args.count)
        return 0
    configs = [c for c in args.configs.split(",") if c]
    loops = [v for v in args.loops.split(",") if v]
    if not set(configs) <= set(NAMES) or not set(loops) <= {"asyncio", "uvloop"}:
        parser.error("--configs from bare,floor,one,two; --loops from asyncio,uvloop")
    if args.clients < args.reader_procs or args.seconds <= 0:
        parser.error("--clients ≥ --reader-procs, --seconds > 0")
    raise_fd_limit()
    print_header("ball scale-out: bare broadcast(), one workshop process, two on Redis")
    print(
        f"{args.clients} clients (cheap readers in {args.reader_procs} processes), "
        f"{args.seconds:g} s window per run, configs {configs}, server loops {loops}\n"
    )
    from workshop_lib.redis.local import LocalRedis

    runs: list[Run] = []
    started = time.monotonic()
    with ExitStack() as stack:
        redis = stack.enter_context(LocalRedis()) if "two" in configs else None
        for _ in range(args.repeats):
            for loop in loops:
                for config in configs:
                    run = measure(config, loop, args, redis)
                    runs.append(run)
                    print(f"{NAMES[config]} on {loop}: done", flush=True)
    bare = [r.us_per_frame for r in runs if r.config == "bare" and r.loop == "asyncio"]
    anchor = statistics.fmean(bare) if bare else None
    print("\n" + HEAD)
    for run in runs:
        print(row(run, anchor))
    print()
    if anchor:
        print(
            f"vs bare: server CPU per delivered frame / bare broadcast() on asyncio's loop "
            f"({anchor:.1f} µs)"
        )
    failed = False
    for run in runs:
        worst = run.share("worst")
        verdict = "PASS" if worst >= SHARE_GOAL else "MISS"
        failed |= worst < SHARE_GOAL
        print(
            f"{NAMES[run.config]} on {run.loop}: worst client {100 * worst:.1f}% of "
            f"{RATE * run.seconds:.0f} ticks (goal ≥ {100 * SHARE_GOAL:.0f}%): {verdict}; "
            f"ticks seen span {run.span} in {run.seconds:g} s"
        )
        if len(run.by_server) > 1:  # which process's clients got less, and why
            ticks = RATE * run.seconds
            pairs = zip(run.by_server, run.server_stats, strict=True)
            for i, (distinct, stats) in enumerate(pairs):
                role = "ticker" if stats.get("ticking_here") else "relay"
                print(
                    f"  process {i} ({role}): worst {100 * min(distinct) / ticks:.1f}%, "
                    f"median {100 * statistics.median(distinct) / ticks:.1f}%; frames skipped "
                    f"for clients behind {stats.get('frames_skipped', '?')}, not published "
                    f"{stats.get('frames_unpublished', '-')} (whole run)"
                )
    one, five, _ = os.getloadavg()
    print(f"\n({time.monotonic() - started:.0f} s; load average now {one:.2f}, {five:.2f})")
    return 0


if __name__ == "__main__":
    run_main(main)
