"""Lesson 06's table: one chat room on one process, and on two processes joined by Redis.

Members are spread evenly over the server processes (``python -m workshop_lib serve``,
with ``--redis`` for the Redis rows); posters on every process send messages at a steady
rate, and every member records when each message arrives. The figures: members per
process, each process's CPU (% of one core), delivery latency p50 and p99 (from the
poster's send to a member's receive, over every member and message), and whether every
member got every message in one order.

    python bench/scale_out.py                         # 200 members, 20 messages a second
    python bench/scale_out.py --members 400 --rate 40

The "memory" row is today's single process without Redis, the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _common import percentile, print_header, raise_fd_limit, run_main
from websockets.asyncio.client import connect

from workshop_lib.processes import ServerProcess
from workshop_lib.redis_local import LocalRedis


async def member(url: str, name: str, ready: asyncio.Queue, arrivals: dict, stop: asyncio.Event):
    async with connect(url, proxy=None, max_queue=None) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": name}))
        await websocket.recv()  # the welcome
        ready.put_nowait(websocket)
        mine: list[tuple[str, int, float]] = []
        arrivals[name] = mine
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(websocket.recv(), 0.5)
            except TimeoutError:
                continue
            event = json.loads(message)
            if event["type"] == "chat.message":
                mine.append((event["text"], event["id"], time.perf_counter()))


async def run(urls: list[str], members: int, rate: float, seconds: float) -> dict:
    ready: asyncio.Queue = asyncio.Queue()
    arrivals: dict[str, list] = {}
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(member(urls[i % len(urls)], f"m{i}", ready, arrivals, stop))
        for i in range(members)
    ]
    sockets = [await asyncio.wait_for(ready.get(), 60) for _ in range(members)]
    await asyncio.sleep(1)  # the joins' own events delivered before the clock starts
    # Posters spread over the processes, each well under the chat's 5 messages a second.
    posters = sockets[: max(len(urls), int(rate / 2))]
    sent: dict[str, float] = {}
    count = int(rate * seconds)
    started = time.perf_counter()
    for n in range(count):
        text = f"msg {n}"
        sent[text] = time.perf_counter()
        await posters[n % len(posters)].send(json.dumps({"type": "chat.send", "text": text}))
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(len(a) < count for a in arrivals.values()):
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [
        (at - sent[text]) * 1000 for got in arrivals.values() for text, _, at in got if text in sent
    ]
    orders = {tuple(i for _, i, _ in got) for got in arrivals.values()}
    complete = all(len(got) == count for got in arrivals.values())
    return {"latencies": latencies, "one_order": len(orders) == 1 and complete, "count": count}


def measure(label: str, processes: int, redis: str | None, args) -> list[str]:
    servers = [
        ServerProcess(redis=redis, args=["--max-per-address", "0"]) for _ in range(processes)
    ]
    try:
        for server in servers:
            server.start()
        cpu_before = [s.cpu_seconds() for s in servers]
        wall = time.perf_counter()
        result = asyncio.run(
            run([s.ws("/chat") for s in servers], args.members, args.rate, args.seconds)
        )
        wall = time.perf_counter() - wall
        cpu = [(s.cpu_seconds() - c) / wall * 100 for s, c in zip(servers, cpu_before, strict=True)]
    finally:
        for server in servers:
            server.stop()
    lat = result["latencies"]
    return [
        label,
        str(processes),
        str(args.members // processes),
        " + ".join(f"{c:.0f}%" for c in cpu),
        f"{percentile(lat, 0.5):.1f} ms" if lat else "none arrived",
        f"{percentile(lat, 0.99):.1f} ms" if lat else "-",
        "yes" if result["one_order"] else "NO",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20, help="messages a second, in all")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    raise_fd_limit()
    print_header("Scale-out: one chat room on one process, and on two joined by Redis")
    print(f"{args.members} members, {args.rate:g} messages a second for {args.seconds:g} s\n")
    rows = [["", "processes", "members each", "CPU per process", "p50", "p99", "all, one order"]]
    rows.append(measure("memory", 1, None, args))
    with LocalRedis() as redis:
        rows.append(measure("redis", 1, redis.url, args))
        rows.append(measure("redis", 2, redis.url, args))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    return 0 if all(row[-1] == "yes" for row in rows[1:]) else 1


if __name__ == "__main__":
    run_main(main)
