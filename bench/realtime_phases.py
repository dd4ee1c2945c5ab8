"""The Realtime session's own CPU per exchange, in this process: no sockets, no other sessions.

What ``bench/realtime_stream.py``'s first delta waits for on the server, less the network
and the event loop: a user item, then ``response.create`` up to the first delta's write,
then each following delta, each measured in this thread's CPU time (``time.thread_time``),
so that other work on a shared machine counts less than in wall time. Events go to a send
that takes JSON text, as the server's ``EventWriter`` does, and are encoded there.

    python bench/realtime_phases.py                 # 2,000 exchanges, 3 repeats
    PYTHONPATH=/tmp/before python bench/realtime_phases.py    # another tree's code
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))

from _common import print_header, run_main

QUESTION = " ".join(f"word{i}" for i in range(25))  # as realtime_stream.py asks
ITEM = json.dumps(
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": QUESTION}],
        },
    }
)
CREATE = '{"type": "response.create"}'
# A new session answers in audio, as the service does; the bench asks for text, as
# realtime_stream.py's clients do.
TEXT = '{"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}'


class _Sink:
    """The server's writer without a socket: events encoded as it encodes them, then kept."""

    def __init__(self) -> None:
        from workshop_lib.realtime import wire

        # The tree under test may predate wire.encode: then json.dumps, as its writer did.
        self.encode = (
            getattr(wire, "encode", None)
            or json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        )
        self.frames: list[str] = []

    async def send(self, event: dict | str) -> None:
        self.frames.append(event if isinstance(event, str) else self.encode(event))

    send.takes_text = True  # type: ignore[attr-defined]

    def write_now(self, text: str) -> bool:
        self.frames.append(text)
        return True


async def _measure(exchanges: int) -> tuple[float, float, float]:
    """µs of CPU: a user item, ``response.create`` to its first delta, one more delta."""
    from workshop_lib.realtime.responder import echo_responder
    from workshop_lib.realtime.session import Counts, RealtimeSession

    sink = _Sink()
    clock = time.thread_time_ns
    item_ns = create_ns = delta_ns = deltas = 0
    with ThreadPoolExecutor(1) as pool:
        # delay: the response's task waits after its first delta, so the handler's part is
        # alone in create_ns; the rest is timed by stepping the task one delta at a time.
        session = RealtimeSession(sink.send, echo_responder, pool, Counts(), delay=1e-9)
        await session.handle(TEXT)
        for _ in range(exchanges):
            sink.frames.clear()
            start = clock()
            await session.handle(ITEM)
            middle = clock()
            await session.handle(CREATE)
            end = clock()
            item_ns += middle - start
            create_ns += end - middle
            response = session.response
            assert response is not None and response.task is not None
            before = len(sink.frames)
            start = clock()
            while not response.task.done():
                await asyncio.sleep(0)
            delta_ns += clock() - start
            deltas += sum('.delta"' in f[:60] for f in sink.frames[before:])
            # Keep the conversation short, as in the bench (one question per session).
            session.items.clear()
            session._sizes.clear()
            session._total = 0
        with contextlib.suppress(Exception):
            await session.close()
    return item_ns / exchanges / 1e3, create_ns / exchanges / 1e3, delta_ns / deltas / 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import workshop_lib

    print_header("Realtime session CPU per exchange (in process)")
    print(f"workshop_lib from {os.path.dirname(workshop_lib.__file__)}")
    runs = [asyncio.run(_measure(args.exchanges)) for _ in range(args.repeats)]
    for label, index in (
        ("user item (parse, check, 2 events)", 0),
        ("response.create -> first delta (5 events)", 1),
        ("each later delta (closing events, loop turns)", 2),
    ):
        values = [run[index] for run in runs]
        print(
            f"{label:<44} median {statistics.median(values):7.1f} µs "
            f"({min(values):.1f}–{max(values):.1f})"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
