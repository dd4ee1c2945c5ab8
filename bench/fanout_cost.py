"""One frame to each of N connections, the sender's CPU: fanout(), broadcast() and the floor.

    python bench/fanout_cost.py                       # 300 connections, asyncio's loop
    python bench/fanout_cost.py --loop uvloop --connections 1000

One process runs a bare websockets server (``serve()``, no compression) on its event loop;
``--connections`` cheap readers (``bench/_readers.py``, via ``ball_scale_out.py --read``)
connect from a child process. Then, at 60 Hz, the loop sends one ball-sized frame to every
connection with one of these, taking turns frame by frame so that outside load falls on
all of them alike:

- ``broadcast``: ``websockets.broadcast(connections, text)``;
- ``fanout``: ``workshop_lib.wire.fanout.fanout(connections, text, backlog_limit=8192)``, as the
  ball lesson calls it;
- ``floor``: the frame serialized once, then ``connection.transport.write(frame)`` for each
  connection with no check at all;
- ``send``: the floor without asyncio's transport: ``socket.send(frame)`` on a duplicate of
  each connection's socket (a frame that would block is dropped), i.e. the system call
  alone.

The figure is the sending thread's CPU time (``time.thread_time()``) per connection per
frame, so the readers' own CPU and other processes' do not count; only what the kernel does
inside each ``send()`` (on loopback, that includes delivering into the reader's socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _common import HOST, child, print_header, raise_fd_limit, run_main
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.frames import Frame, Opcode

from workshop_lib.wire.fanout import fanout

FRAME = (
    '{"type":"ball.state","tick":%d,"x":0.5123456789012345,"y":0.4123456789012345,'
    '"vx":0.37,"vy":-0.23,"radius":0.05,"color":"#e4572e","paused":false,"ts":%r}'
)
BALL_SCALE_OUT = os.path.join(os.path.dirname(__file__), "ball_scale_out.py")


def _floor(connections: list[ServerConnection], text: str) -> None:
    data = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    for connection in connections:
        connection.transport.write(data)


def _raw_sockets(connections: list[ServerConnection]) -> list[socket.socket]:
    # asyncio wraps the socket (TransportSocket); a dup of its fd is a plain socket.
    return [
        socket.socket(fileno=os.dup(c.transport.get_extra_info("socket").fileno()))
        for c in connections
    ]


VARIANTS: dict[str, Callable[[list[ServerConnection], str], Any]] = {
    "broadcast": broadcast,
    "fanout": lambda c, t: fanout(c, t, backlog_limit=8192),
    "floor": _floor,
}


async def _measure(args: argparse.Namespace) -> dict[str, list[float]]:
    connections: list[ServerConnection] = []

    async def handler(websocket: ServerConnection) -> None:
        connections.append(websocket)
        await websocket.wait_closed()

    costs: dict[str, list[float]] = {name: [] for name in [*VARIANTS, "send"]}
    async with serve(handler, HOST, 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        argv = ["--read", f"ws://{HOST}:{port}/", "--count", str(args.connections)]
        with child(BALL_SCALE_OUT, argv, "readers") as readers:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, readers.expect, "READY ", 120)
            start = time.time()
            readers.send(f"GO {start} {start + args.seconds + 5}")
            raw = _raw_sockets(connections)
            for sock in raw:
                sock.setblocking(False)
            names = list(costs)
            dropped = 0  # "send" frames that would have blocked
            period = 1 / 60
            due = loop.time()
            for tick in range(int(args.seconds * 60)):
                name = names[tick % len(names)]
                text = FRAME % (tick, time.time())
                before = time.thread_time()
                if name == "send":
                    data = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
                    for sock in raw:
                        try:
                            sock.send(data)
                        except (BlockingIOError, InterruptedError):
                            dropped += 1
                else:
                    VARIANTS[name](connections, text)
                costs[name].append((time.thread_time() - before) / len(connections) * 1e6)
                due += period
                await asyncio.sleep(max(0.0, due - loop.time()))
            for sock in raw:
                sock.close()
            if dropped:
                print(f"warning: {dropped} raw sends would have blocked (dropped)")
            result = json.loads(await loop.run_in_executor(None, readers.expect, "RESULT ", 60))
    if result["errors"] or result["closed"]:
        print(f"warning: readers saw {result['errors']} protocol errors, {result['closed']} closes")
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    raise_fd_limit()
    print_header(f"fan-out cost per connection per frame, {args.loop} loop")
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        costs = runner.run(_measure(args))
    base = statistics.median(costs["broadcast"])
    print(f"{args.connections} connections, {args.seconds:g} s at 60 Hz, variants in turn\n")
    print(f"{'variant':10} {'frames':>6} {'median µs':>9} {'mean µs':>8} {'vs broadcast':>12}")
    for name, values in costs.items():
        median = statistics.median(values)
        print(
            f"{name:10} {len(values):>6} {median:>9.2f} {statistics.fmean(values):>8.2f} "
            f"{median / base:>11.2f}x"
        )
    one, five, _ = os.getloadavg()
    print(f"\n(load average now {one:.2f}, {five:.2f})")
    return 0


if __name__ == "__main__":
    run_main(main)
