"""Where a crowd's first deltas wait: loop turns and the server's CPU, both servers alike.

``bench/realtime_stream.py``'s text run, 100 sessions asking at once, with each server's
event loop watched from inside (the same hooks in both child processes): how many loop
turns pass between a session's ``response.create`` coming out of ``recv()`` and the write
that carries its first delta; how many turns the whole crowd takes, from the first item's
arrival to the last first delta; how many writes a session's first delta needed; and the
server thread's CPU time over that span ("crowd CPU": what the last first delta waited for).

    python bench/realtime_turns.py                 # 4 rounds of each server, alternating

The hooks (a counter on ``BaseEventLoop._run_once``, wrappers on websockets'
``Connection.data_received``/``recv`` and asyncio's socket transport ``write``) cost a
little on both sides; this script explains the figures of realtime_stream.py, it does not
replace them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import realtime_stream
from _common import HOST, child, percentile, print_header, run_main
from websockets.asyncio.client import connect


def _watch() -> None:
    """(child) Hook the loop, the connections and the socket writes; one STATS line per
    session when it closes."""
    import asyncio.selector_events as selector_events

    from websockets.asyncio.connection import Connection

    clock, cpu = time.perf_counter, time.thread_time
    turns = [0]
    sessions: dict[int, dict] = {}

    def state(connection: object) -> dict:
        return sessions.setdefault(id(connection), {"in": [], "recv": [], "first": None})

    run_once = asyncio.BaseEventLoop._run_once  # type: ignore[attr-defined]

    def counted(loop: asyncio.BaseEventLoop) -> None:
        turns[0] += 1
        run_once(loop)

    asyncio.BaseEventLoop._run_once = counted  # type: ignore[attr-defined]
    data_received = Connection.data_received

    def received(self: Connection, data: bytes) -> None:
        state(self)["in"].append((clock(), turns[0], cpu()))
        data_received(self, data)

    Connection.data_received = received  # type: ignore[method-assign]
    recv = Connection.recv

    async def receive(self: Connection, decode: bool | None = None) -> str | bytes:
        message = await recv(self, decode)
        kind = (
            "create" if "response.create" in message else "item" if "item.create" in message else ""
        )  # type: ignore[operator]
        state(self)["recv"].append((clock(), turns[0], kind))
        return message

    Connection.recv = receive  # type: ignore[method-assign]
    transport_class = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
    write = transport_class.write

    def written(self: asyncio.Transport, data: bytes) -> None:
        s = sessions.get(id(self.get_protocol()))
        if s is not None and s["recv"] and s["recv"][-1][2] == "create" and s["first"] is None:
            s["writes"] = s.get("writes", 0) + 1
            if b'.delta"' in bytes(data):
                s["first"] = (clock(), turns[0], cpu(), s["writes"])
        write(self, data)

    transport_class.write = written
    connection_lost = Connection.connection_lost

    def lost(self: Connection, exc: Exception | None) -> None:
        s = sessions.pop(id(self), None)
        if s is not None and s["first"] is not None:
            item = next(r for r in reversed(s["recv"]) if r[2] == "item")
            create = next(r for r in reversed(s["recv"]) if r[2] == "create")
            arrived = [x for x in s["in"] if x[0] <= item[0]][-1]
            record = {"arrived": arrived, "create": create, "first": s["first"]}
            print("STATS " + json.dumps(record), flush=True)
        connection_lost(self, exc)

    Connection.connection_lost = lost  # type: ignore[method-assign]


async def _session(
    port: int, ready: asyncio.Queue[None], start: asyncio.Event
) -> tuple[float, float]:
    """One text exchange: (response.create sent, first delta read), perf_counter seconds."""
    (_, update), (_, item), _ = realtime_stream._text_messages()
    url = f"ws://{HOST}:{port}/v1/realtime?model=bench"
    async with connect(
        url, proxy=None, compression=None, max_size=None, ping_interval=None
    ) as websocket:
        await websocket.recv()
        await websocket.send(update)
        while json.loads(await websocket.recv())["type"] != "session.updated":
            pass
        ready.put_nowait(None)
        await start.wait()
        await websocket.send(item)
        await websocket.send('{"type": "response.create"}')
        sent, first = time.perf_counter(), None
        async for message in websocket:
            kind = json.loads(message)["type"]
            if kind == "response.output_text.delta" and first is None:
                first = time.perf_counter()
            elif kind == "response.done":
                assert first is not None
                return sent, first
    raise RuntimeError("closed before response.done")


async def _round(port: int, sessions: int) -> list[tuple[float, float]]:
    start, ready = asyncio.Event(), asyncio.Queue()
    tasks = [asyncio.create_task(_session(port, ready, start)) for _ in range(sessions)]
    for _ in range(sessions):
        await asyncio.wait_for(ready.get(), 30)
    start.set()
    return await asyncio.gather(*tasks)


def _figures(times: list[tuple[float, float]], stats: list[dict]) -> dict[str, float]:
    first_ms = [(first - sent) * 1000 for sent, first in times]
    return {
        "p50": percentile(first_ms, 0.5),
        "p99": percentile(first_ms, 0.99),
        "turns_max": max(s["first"][1] - s["create"][1] for s in stats),
        "crowd_turns": max(s["first"][1] for s in stats) - min(s["arrived"][1] for s in stats),
        "writes_max": max(s["first"][3] for s in stats),
        "crowd_cpu_ms": (max(s["first"][2] for s in stats) - min(s["arrived"][2] for s in stats))
        * 1000,
        "create_to_first_us": statistics.median(
            (s["first"][0] - s["create"][0]) * 1e6 for s in stats
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--serve", choices=["workshop", "bare"], help="(child) run a server")
    parser.add_argument("--frames", help="(child) the recorded frames the bare server replays")
    args = parser.parse_args(argv)
    if args.serve:
        _watch()
        if args.serve == "bare":
            realtime_stream.serve_bare(args.delay, args.frames)
        else:
            realtime_stream.serve_workshop(args.delay, False)
        return 0
    print_header("Realtime first deltas: loop turns and the server's CPU before them")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(realtime_stream.record_exchange(False), file)
    kinds = ["bare", "workshop"]
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    try:
        with contextlib.ExitStack() as stack:
            servers = {}
            for kind in kinds:
                command = ["--serve", kind, "--frames", file.name, "--delay", str(args.delay)]
                c = stack.enter_context(child(__file__, command, f"{kind} server"))
                servers[kind] = (c, int(c.expect("PORT ", 20)))
            for _, port in servers.values():  # unmeasured: imports, caches
                asyncio.run(_round(port, 10))
            for repeat in range(args.repeats):
                for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
                    c, port = servers[kind]
                    c.stats.clear()
                    times = asyncio.run(_round(port, args.sessions))
                    deadline = time.monotonic() + 15
                    while len(c.stats) < args.sessions and time.monotonic() < deadline:
                        time.sleep(0.02)
                    results[kind].append(_figures(times, list(c.stats)))
    finally:
        os.unlink(file.name)
    print(
        f"{'server':<9} {'1st p50':>8} {'p99':>8} {'create→1st':>11} {'turns':>6} "
        f"{'writes':>7} {'crowd turns':>12} {'crowd CPU':>10}"
    )
    for kind in kinds:
        for f in results[kind]:
            print(
                f"{kind:<9} {f['p50']:6.1f}ms {f['p99']:6.1f}ms {f['create_to_first_us']:8.0f} µs "
                f"{f['turns_max']:>6} {f['writes_max']:>7} {f['crowd_turns']:>12} "
                f"{f['crowd_cpu_ms']:7.1f} ms"
            )
    ratios = [
        o["crowd_cpu_ms"] / b["crowd_cpu_ms"]
        for o, b in zip(results["workshop"], results["bare"], strict=True)
    ]
    p99s = [o["p99"] / b["p99"] for o, b in zip(results["workshop"], results["bare"], strict=True)]
    print(
        f"\nworkshop / bare, round by round (median): crowd CPU {statistics.median(ratios):.2f}x "
        f"({min(ratios):.2f}–{max(ratios):.2f}), first delta p99 {statistics.median(p99s):.2f}x"
    )
    print(
        "turns: loop turns from response.create's recv() to its first delta's write (max); "
        "writes: the writes that took it; crowd: from the first item in to the last first delta"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    run_main(main)
