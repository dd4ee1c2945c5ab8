"""One chat room on one process and on several, measured: the figures of lesson 06's table.

    row = measure_room(processes=2, redis=redis.url, members=40, rate=20, seconds=2)
    row.cpu_percent, row.p50_ms, row.p99_ms, row.one_order
    RoomTable([memory_row, redis_row, two_processes_row])      # shows as a table

Each row starts real server processes (``python -m workshop_lib serve``, with ``--redis``
for the Redis rows), spreads the members evenly over them, lets posters on every process
send at a steady rate, and records when each message reaches each member. Latency runs from
the poster's send to a member's receive, over every member and message; "one order" holds
when every member got every message, in the same order, with the same ids. The members are
asyncio clients on one loop of a thread of their own (the notebook's loop stays free).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import json
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from ..server.processes import ServerProcess

__all__ = ["RoomRow", "RoomTable", "measure_room"]

JOIN_TIMEOUT = 60.0  # seconds for every member to be welcomed (a flood of joins, 2 cores)
DRAIN_TIMEOUT = 10.0  # seconds after the last send for the last message to arrive


@dataclass
class RoomRow:
    """One configuration's figures."""

    label: str
    processes: int
    members: int
    messages: int  # how many were sent
    cpu_percent: list[float] = field(default_factory=list)  # each process, % of one core
    latencies_ms: list[float] = field(default_factory=list)
    one_order: bool = False
    missing: int = 0  # (member, message) pairs that never arrived

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile of the latencies (NaN for none)."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]

    @property
    def p50_ms(self) -> float:
        return self.percentile(0.50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99)

    def cells(self) -> list[str]:
        """The row as the table prints it."""
        arrived = bool(self.latencies_ms)
        return [
            self.label,
            str(self.processes),
            str(self.members // self.processes),
            " + ".join(f"{c:.0f}%" for c in self.cpu_percent),
            f"{self.p50_ms:.1f} ms" if arrived else "none arrived",
            f"{self.p99_ms:.1f} ms" if arrived else "-",
            "yes" if self.one_order else f"NO ({self.missing} missing)",
        ]


HEADERS = ["", "processes", "members each", "CPU per process", "p50", "p99", "all, one order"]


class RoomTable(list[RoomRow]):
    """Rows that print as a text table and show as an HTML one in a notebook."""

    def __str__(self) -> str:
        rows = [HEADERS, *(row.cells() for row in self)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
        return "\n".join(
            "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row.cells()) + "</tr>"
            for row in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def measure_room(
    *,
    processes: int = 1,
    redis: str | None = None,
    members: int = 40,
    rate: float = 20.0,
    seconds: float = 2.0,
    label: str | None = None,
) -> RoomRow:
    """Start ``processes`` servers (joined by ``redis`` if given) and measure one room."""
    servers = [
        ServerProcess(redis=redis, args=["--max-per-address", "0"]) for _ in range(processes)
    ]
    row = RoomRow(label or ("redis" if redis else "memory"), processes, members, 0)
    try:
        for server in servers:
            server.start()
        cpu_before = [s.cpu_seconds() for s in servers]
        wall = time.perf_counter()
        urls = [s.ws("/chat") for s in servers]
        # On a thread of its own: a notebook's cell already runs inside an event loop.
        with concurrent.futures.ThreadPoolExecutor(1, "room-members") as pool:
            pool.submit(asyncio.run, _talk(urls, row, rate, seconds)).result()
        wall = time.perf_counter() - wall
        row.cpu_percent = [
            (s.cpu_seconds() - c) / wall * 100 for s, c in zip(servers, cpu_before, strict=True)
        ]
    finally:
        for server in servers:
            server.stop()
    return row


async def _member(
    url: str,
    name: str,
    ready: asyncio.Queue[ClientConnection],
    got: list[tuple[str, int, float]],
) -> None:
    async with connect(url, proxy=None, max_queue=None, open_timeout=JOIN_TIMEOUT) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": name}))
        await websocket.recv()  # the welcome
        ready.put_nowait(websocket)
        async for message in websocket:  # until the run closes it
            event = json.loads(message)
            if event["type"] == "chat.message":
                got.append((event["text"], event["id"], time.perf_counter()))


async def _talk(urls: list[str], row: RoomRow, rate: float, seconds: float) -> None:
    ready: asyncio.Queue[ClientConnection] = asyncio.Queue()
    arrivals: list[list[tuple[str, int, float]]] = [[] for _ in range(row.members)]
    tasks = [
        asyncio.create_task(_member(urls[i % len(urls)], f"m{i}", ready, arrivals[i]))
        for i in range(row.members)
    ]
    try:
        async with asyncio.timeout(JOIN_TIMEOUT):
            sockets = [await ready.get() for _ in range(row.members)]
        # The joins' own events (chat.joined, to everyone) drain before the clock starts.
        await asyncio.sleep(1)
        # Posters spread over the processes, each well under the chat's 5 messages a second.
        posters = sockets[: max(len(urls), int(rate / 2))]
        row.messages = count = int(rate * seconds)
        sent: dict[str, float] = {}
        started = time.perf_counter()
        for n in range(count):
            text = f"msg {n}"
            sent[text] = time.perf_counter()
            await posters[n % len(posters)].send(json.dumps({"type": "chat.send", "text": text}))
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
        deadline = time.perf_counter() + DRAIN_TIMEOUT
        while time.perf_counter() < deadline and any(len(a) < count for a in arrivals):
            await asyncio.sleep(0.05)  # polling a count the readers fill: no event to await
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    row.latencies_ms = [(at - sent[t]) * 1000 for got in arrivals for t, _, at in got if t in sent]
    orders = {tuple(i for _, i, _ in got) for got in arrivals}
    row.missing = sum(count - len(got) for got in arrivals)
    row.one_order = len(orders) == 1 and row.missing == 0
