"""Lesson 06's table: one chat room on one process, and on two processes joined by Redis.

Members are spread evenly over the server processes (``python -m workshop_lib serve``,
with ``--redis`` for the Redis rows); posters on every process send messages at a steady
rate, and every member records when each message arrives. The figures: members per
process, each process's CPU (% of one core), delivery latency p50 and p99 (from the
poster's send to a member's receive, over every member and message), and whether every
member got every message in one order. The measuring is `workshop_lib.chat.measure`, the
same code notebook 06 runs at a smaller scale.

    python bench/scale_out.py                          # 200 members, 20 messages a second
    python bench/scale_out.py --members 400 --rate 200 --seconds 30   # the issue's scale

The "memory" row is today's single process without Redis, the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_header, raise_fd_limit, run_main

from workshop_lib.chat.measure import RoomTable, measure_room
from workshop_lib.redis_local import LocalRedis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20, help="messages a second, in all")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    raise_fd_limit()
    print_header("Scale-out: one chat room on one process, and on two joined by Redis")
    print(f"{args.members} members, {args.rate:g} messages a second for {args.seconds:g} s\n")
    load = {"members": args.members, "rate": args.rate, "seconds": args.seconds}
    table = RoomTable([measure_room(processes=1, **load)])
    with LocalRedis() as redis:
        table.append(measure_room(processes=1, redis=redis.url, **load))
        table.append(measure_room(processes=2, redis=redis.url, **load))
    print(table)
    return 0 if all(row.one_order for row in table) else 1


if __name__ == "__main__":
    run_main(main)
