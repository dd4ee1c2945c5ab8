"""One chat room on one process and on two joined by Redis, with hundreds of cheap members.

    python bench/scale_out.py                          # 400 members, one post each every 2 s, 10 s
    python bench/scale_out.py --seconds 30             # the issue's run (200 messages a second)
    python bench/scale_out.py --loops asyncio,uvloop   # each configuration on both loops
    python bench/scale_out.py --table                  # lesson 06's table (measure_room), small

Each configuration runs in turn, in this one invocation, with the same members:

- ``memory``: one ``python -m workshop_lib serve`` process, the room in memory;
- ``redis``: one ``serve --redis`` process on a ``redis-server`` of its own;
- ``two``: two ``serve --redis`` processes on one ``redis-server``, the members split evenly.

Every member joins under a name of its own, and once every member has been welcomed, each
posts one message every ``--interval`` seconds (their first posts spread evenly over the
first interval), so 400 members every 2 s is 200 messages a second, each delivered to all
400: 80,000 frames a second in all. The members are ``bench/_readers.py`` readers (a protocol
per connection, frames parsed from raw reads; websockets' asyncio client could not read
80,000 frames a second on this machine beside the servers), in ``--reader-procs`` child
processes on uvloop when it is installed.

Goals (issue 13, for two processes): nothing lost, one order (the same id sequence on every
member, strictly increasing), delivery p99 ≤ 50 ms from the poster's send to a member's
read. CPU per process (% of one core) and per delivered message, for the servers, Redis and
the members. Linux only (CPU time from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import sys
import time
from array import array
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar

sys.path.insert(0, os.path.dirname(__file__))

from _common import child, cpu_seconds, print_header, raise_fd_limit, run_main
from _readers import Reader, open_readers, run_fast

P99_GOAL = 50.0  # ms
GRACE = 10.0  # s after the last post for the last deliveries
LEAD = 1.0  # s between GO and the first post: every reader process has read the line


# -- the members' side (a child process) -------------------------------------------------------


class Member(Reader):
    """Joins, then keeps each ``chat.message``'s id and delivery latency; nothing else."""

    delays: ClassVar[dict[int, int]] = {}  # 0.1 ms bins, shared by the process's members
    others: ClassVar[dict[str, int]] = {}  # event types besides messages, counted
    until: ClassVar[float] = float("inf")  # ... until the last post (then members leave)

    def __init__(self, url: str, name: str) -> None:
        super().__init__(url)
        self.name = name
        self.ids = array("q")
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_open(self) -> None:
        self.send_text(json.dumps({"type": "chat.join", "name": self.name}))

    def on_message(self, payload: bytes, now: float) -> None:
        if b'"chat.message"' in payload[:40]:
            i = payload.find(b'"id":') + 5
            self.ids.append(int(payload[i : payload.find(b",", i)]))
            j = payload.find(b'"text":"') + 8
            sent = float(payload[payload.find(b"@", j) + 1 : payload.find(b'"', j)])
            key = int((now - sent) * 10_000)
            delays = self.delays
            delays[key] = delays.get(key, 0) + 1
            return
        event = json.loads(payload)
        kind = event.get("type", "?")
        if kind == "error":  # which one says why (rate_limited, unavailable, ...)
            kind = f"error {event.get('code', '?')}"
        if kind == "chat.welcome" and not self.welcomed.done():
            self.welcomed.set_result(None)
        elif kind.startswith("error") and not self.welcomed.done():
            # A join refused ("unavailable": the server's Redis pool was busy past its
            # wait under a flood of joins) is tried again, as the error event says to.
            self.others[f"join {kind}"] = self.others.get(f"join {kind}", 0) + 1
            asyncio.get_running_loop().call_later(0.5, self.on_open)
        elif kind.startswith("error") or (
            # Refusals count whenever they come (a post waits up to 5 s for Redis); leaves
            # only until the last post, after which members leave as they finish.
            kind not in ("chat.joined", "chat.welcome", "heartbeat.ok") and now < self.until
        ):
            self.others[kind] = self.others.get(kind, 0) + 1


async def _lag_probe(lags: list[float], period: float = 0.005) -> None:
    """How late this process's loop wakes from a short sleep: is the client the bottleneck?"""
    while True:
        due = time.perf_counter() + period
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - due)


async def _members(urls: list[str], first: int, count: int, step: int) -> None:
    loop = asyncio.get_running_loop()
    names = [first + k * step for k in range(count)]  # global member numbers
    pending = iter(names)  # names in the order the connections are made: any order will do

    def make(url: str) -> Member:
        return Member(url, f"m{next(pending)}")

    # Member n joins server n % len(urls): each process's members spread over the servers.
    members = await open_readers(make, [urls[n % len(urls)] for n in names], count, timeout=180)
    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(m.welcomed for m in members))
    except TimeoutError:
        welcomed = sum(1 for m in members if m.welcomed.done())
        raise SystemExit(f"only {welcomed} of {count} members welcomed in 120 s") from None
    print(f"READY {len(members)}", flush=True)

    line = await loop.run_in_executor(None, sys.stdin.readline)
    start, seconds, interval, expected, total, grace = (float(v) for v in line.split()[1:7])
    lags: list[float] = []
    probe = asyncio.create_task(_lag_probe(lags))
    late: list[float] = []
    posts = int(seconds / interval)
    Member.until = start + seconds + 1.0
    # Every member posts at start + its phase + k * interval; phases spread over one interval.
    schedule = sorted(
        (start + interval * (int(m.name[1:]) / total) + k * interval, m.name, m)
        for m in members
        for k in range(posts)
    )
    for due, name, member in schedule:
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late.append(-delay)
        member.send_text(f'{{"type":"chat.send","text":"{name} @{time.time():.6f}"}}')
    deadline = time.time() + grace
    while time.time() < deadline and any(len(m.ids) < expected for m in members):
        await asyncio.sleep(0.05)  # the members' arrays fill as frames come: nothing to await
    probe.cancel()
    lags.sort()
    late.sort()
    result = {
        "counts": [len(m.ids) for m in members],
        "orders": [hashlib.blake2b(m.ids.tobytes(), digest_size=8).hexdigest() for m in members],
        "increasing": all(all(a < b for a, b in itertools.pairwise(m.ids)) for m in members),
        "closed": sum(1 for m in members if m.closed.done()),
        "errors": sum(m.errors for m in members),
        "others": Member.others,
        "delays": Member.delays,
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "late_max_ms": 1000 * late[-1] if late else 0.0,
    }
    print("RESULT " + json.dumps(result), flush=True)
    for member in members:
        member.close()
    await asyncio.wait([m.closed for m in members], timeout=5)


def members_main(urls: list[str], first: int, count: int, step: int) -> None:
    raise_fd_limit()
    run_fast(_members(urls, first, count, step))


# -- the parent -----------------------------------------------------------------------------


@dataclass
class Run:
    config: str
    loop: str
    members: int
    seconds: float
    messages: int = 0
    counts: list[int] = field(default_factory=list)
    orders: set[str] = field(default_factory=set)
    increasing: bool = True
    closed: int = 0
    errors: int = 0
    others: dict[str, int] = field(default_factory=dict)
    delays: dict[int, int] = field(default_factory=dict)
    server_cpu: list[float] = field(default_factory=list)
    redis_cpu: float | None = None
    member_cpu: float = 0.0
    lag_p99_ms: float = 0.0
    late_max_ms: float = 0.0

    @property
    def refused(self) -> int:
        """Posts the server answered with an error (it sent nothing: not lost, refused)."""
        return sum(n for kind, n in self.others.items() if kind.startswith("error"))

    # (Joins refused and tried again count as "join error ...", not as refused posts.)

    @property
    def lost(self) -> int:
        """(member, message) pairs missing: accepted messages a member never got."""
        return sum(self.messages - self.refused - c for c in self.counts)

    @property
    def one_order(self) -> bool:
        return self.lost == 0 and len(self.orders) == 1 and self.increasing

    def delay_ms(self, q: float) -> float:
        total = sum(self.delays.values())
        seen = 0
        for key in sorted(self.delays):
            seen += self.delays[key]
            if seen >= q * total:
                return key / 10
        return float("nan")


def measure(config: str, loop: str, args: argparse.Namespace, redis: Any) -> Run:
    from workshop_lib.server.processes import ServerProcess

    run = Run(config, loop, args.members, args.seconds)
    posts = int(args.seconds / args.interval)
    run.messages = posts * args.members
    with ExitStack() as stack:
        count = 2 if config == "two" else 1
        limits = ["--max-connections", "0", "--max-per-address", "0", "--loop", loop]
        servers = [
            stack.enter_context(
                ServerProcess(redis=redis.url if config != "memory" else None, args=limits)
            )
            for _ in range(count)
        ]
        urls = ",".join(s.ws("/chat") for s in servers)
        procs = []
        k = args.reader_procs
        for i in range(k):
            mine = len(range(i, args.members, k))
            argv = ["--read", urls, "--first", str(i), "--count", str(mine), "--step", str(k)]
            procs.append(stack.enter_context(child(__file__, argv, f"members {i}")))
        for proc in procs:
            proc.expect("READY ", 300)
        start = time.time() + LEAD
        go = f"GO {start} {args.seconds} {args.interval} {run.messages} {args.members} {args.grace}"
        for proc in procs:
            proc.send(go)
        time.sleep(max(0.0, start - time.time()))
        pids = [s.pid for s in servers]
        server0 = [cpu_seconds(p) for p in pids]
        redis0 = cpu_seconds(redis.process.pid) if config != "memory" else None
        members0 = [cpu_seconds(p.pid) for p in procs]
        time.sleep(max(0.0, start + args.seconds - time.time()))
        run.server_cpu = [cpu_seconds(p) - c for p, c in zip(pids, server0, strict=True)]
        if redis0 is not None:
            run.redis_cpu = cpu_seconds(redis.process.pid) - redis0
        run.member_cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(procs, members0, strict=True))
        for proc in procs:
            result = json.loads(proc.expect("RESULT ", args.grace + 60))
            run.counts += result["counts"]
            run.orders |= set(result["orders"])
            run.increasing &= result["increasing"]
            run.closed += result["closed"]
            run.errors += result["errors"]
            for kind, n in result["others"].items():
                run.others[kind] = run.others.get(kind, 0) + n
            for key, n in result["delays"].items():
                run.delays[int(key)] = run.delays.get(int(key), 0) + n
            run.lag_p99_ms = max(run.lag_p99_ms, result["lag_p99_ms"])
            run.late_max_ms = max(run.late_max_ms, result["late_max_ms"])
    return run


HEAD = (
    f"{'room':12} {'loop':7} {'members':>7} {'msgs/s':>6} {'refused':>7} {'lost':>7} "
    f"{'one order':>9} "
    f"{'p50 ms':>7} {'p99 ms':>8} {'server CPU':>11} {'redis':>5} {'members':>7} "
    f"{'µs/deliv':>8} {'member lag p99':>14}"
)
NAMES = {"memory": "memory x1", "redis": "redis x1", "two": "redis x2"}


def row(run: Run) -> str:
    wall = run.seconds
    cpu = "+".join(f"{100 * c / wall:.0f}%" for c in run.server_cpu)
    redis = f"{100 * run.redis_cpu / wall:.0f}%" if run.redis_cpu is not None else "-"
    deliveries = run.messages * run.members  # nearly all inside the window
    per = 1e6 * sum(run.server_cpu) / deliveries if deliveries else float("nan")
    line = (
        f"{NAMES[run.config]:12} {run.loop:7} {run.members:>7} {run.messages / wall:>6.0f} "
        f"{run.refused:>7} {run.lost:>7} {'yes' if run.one_order else 'NO':>9} "
        f"{run.delay_ms(0.5):>7.1f} {run.delay_ms(0.99):>8.1f} {cpu:>11} {redis:>5} "
        f"{100 * run.member_cpu / wall:>6.0f}% {per:>8.1f} {run.lag_p99_ms:>11.1f} ms"
    )
    notes = []
    if run.closed:
        notes.append(f"{run.closed} closed")
    if run.errors:
        notes.append(f"{run.errors} protocol errors")
    if len(run.orders) > 1:
        notes.append(f"{len(run.orders)} different id sequences")
    if run.others:
        notes.append(", ".join(f"{n} {kind}" for kind, n in sorted(run.others.items())))
    if run.late_max_ms > 20:
        notes.append(f"posts up to {run.late_max_ms:.0f} ms late")
    return line + (f"  ({'; '.join(notes)})" if notes else "")


def table(args: argparse.Namespace) -> int:
    """Lesson 06's table, as the notebook measures it (asyncio clients, small)."""
    from workshop_lib.chat.measure import RoomTable, measure_room
    from workshop_lib.redis.local import LocalRedis

    print_header("Scale-out: one chat room on one process, and on two joined by Redis")
    load = {"members": args.members, "rate": args.rate, "seconds": args.seconds}
    print(f"{args.members} members, {args.rate:g} messages a second for {args.seconds:g} s\n")
    rows = RoomTable([measure_room(processes=1, **load)])
    with LocalRedis() as redis:
        rows.append(measure_room(processes=1, redis=redis.url, **load))
        rows.append(measure_room(processes=2, redis=redis.url, **load))
    print(rows)
    return 0 if all(row.one_order for row in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, help="400 (--table: 200)")
    parser.add_argument("--seconds", type=float, help="posting window (10; --table: 5)")
    parser.add_argument("--interval", type=float, default=2.0, help="s between a member's posts")
    parser.add_argument(
        "--grace", type=float, default=GRACE, help=f"s after the last post to wait ({GRACE:g})"
    )
    parser.add_argument("--configs", default="memory,redis,two", help="memory,redis,two")
    parser.add_argument("--loops", default="asyncio", help="asyncio,uvloop")
    parser.add_argument("--reader-procs", type=int, default=2, help="member processes (2)")
    parser.add_argument("--table", action="store_true", help="lesson 06's measure_room table")
    parser.add_argument("--rate", type=float, default=20, help="--table: messages a second")
    parser.add_argument("--read", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        members_main(args.read.split(","), args.first, args.count, args.step)
        return 0
    raise_fd_limit()
    if args.table:
        args.members = args.members or 200
        args.seconds = args.seconds or 5.0
        return table(args)
    args.members = args.members or 400
    args.seconds = args.seconds or 10.0
    configs = [c for c in args.configs.split(",") if c]
    loops = [v for v in args.loops.split(",") if v]
    if not set(configs) <= set(NAMES) or not set(loops) <= {"asyncio", "uvloop"}:
        parser.error("--configs from memory,redis,two; --loops from asyncio,uvloop")
    if args.seconds < args.interval or args.members < args.reader_procs:
        parser.error("--seconds ≥ --interval, --members ≥ --reader-procs")
    print_header("Scale-out: one chat room on one process and on two joined by Redis")
    rate = args.members / args.interval
    print(
        f"{args.members} members (cheap readers in {args.reader_procs} processes), one post "
        f"each every {args.interval:g} s for {args.seconds:g} s: {rate:g} messages a second, "
        f"{rate * args.members:,.0f} deliveries a second; configs {configs}, loops {loops}\n"
    )
    from workshop_lib.redis.local import LocalRedis

    runs: list[Run] = []
    started = time.monotonic()
    with ExitStack() as stack:
        redis = stack.enter_context(LocalRedis()) if set(configs) - {"memory"} else None
        for loop in loops:
            for config in configs:
                runs.append(measure(config, loop, args, redis))
                print(f"{NAMES[config]} on {loop}: done", flush=True)
    print("\n" + HEAD)
    for run in runs:
        print(row(run))
    print()
    for run in runs:
        p99 = run.delay_ms(0.99)
        verdicts = [
            f"lost {run.lost}: {'PASS' if run.lost == 0 else 'MISS'}"
            + (f" ({run.refused} posts refused, the poster told)" if run.refused else ""),
            f"one order: {'PASS' if run.one_order else 'MISS'}",
            f"p99 {p99:.1f} ms (goal ≤ {P99_GOAL:g}): {'PASS' if p99 <= P99_GOAL else 'MISS'}",
        ]
        print(f"{NAMES[run.config]} on {run.loop}: " + "; ".join(verdicts))
    one, five, _ = os.getloadavg()
    print(f"\n({time.monotonic() - started:.0f} s; load average now {one:.2f}, {five:.2f})")
    return 0 if all(r.one_order for r in runs if r.config == "two") else 1


if __name__ == "__main__":
    run_main(main)
