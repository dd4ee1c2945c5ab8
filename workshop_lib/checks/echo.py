"""Exercises of notebook 01 (echo): a handler that transforms messages, a round-trip timer.

from workshop_lib.checks.echo import q1, q2, ____
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ..proxies import proxy_for
from ._base import CheckResult, Exercise, ____, scratch_server

__all__ = ["ECHO_DELAYS_MS", "____", "q1", "q2"]

# The check's echo server waits this long before its replies (the n-th delay for the n-th
# message), so a real measurement of each round trip cannot come out shorter, and a list in
# seconds shows the same pattern a thousand times smaller.
ECHO_DELAYS_MS = (100, 300, 150, 400, 200)


class ShoutHandler(Exercise):
    """q1: a handler that answers every text message in capitals, followed by "!"."""

    hint_text = (
        "start from the echo handler: `async for message in websocket:` then "
        '`await websocket.send(...)` with `message.upper() + "!"`.'
    )
    solution_file = "01_shout.py"
    answer_name = "a handler"
    messages = ("hello", "WebSockets are fun", "straße, ü and 1, 2, 3")

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with (
            scratch_server(lessons=[], routes={"/shout": answer}) as server,
            connect(
                url := server.links.ws("/shout"), open_timeout=5, proxy=proxy_for(url)
            ) as websocket,
        ):
            for message in self.messages:
                expected = message.upper() + "!"
                try:
                    websocket.send(message)
                    reply = websocket.recv(timeout=3)
                except TimeoutError:
                    return CheckResult(
                        False,
                        f"sent {message!r} and got no reply within 3 s: "
                        "does your handler `await websocket.send(...)`?",
                    )
                except ConnectionClosed as exc:
                    return CheckResult(
                        False,
                        f"sent {message!r} and the server closed the "
                        f"connection ({exc}); a handler that returns early "
                        "closes it: loop with `async for`",
                    )
                if reply != expected:
                    return CheckResult(
                        False, f"sent {message!r}, expected {expected!r}, got {reply!r}"
                    )
        return CheckResult(
            True, f"your handler answered {len(self.messages)} messages on one connection, in order"
        )


class RoundTripTimer(Exercise):
    """q2: a client coroutine that times n echo round trips, in milliseconds."""

    hint_text = (
        "inside `async with connect(url) as websocket:`, for each message take "
        "`start = time.perf_counter()`, `await websocket.send(...)`, "
        "`await websocket.recv()`, then append `(time.perf_counter() - start) * 1000`."
    )
    solution_file = "01_round_trips.py"
    answer_name = "measure_round_trips"
    timeout_hint = "does every send get its recv?"
    count = len(ECHO_DELAYS_MS)
    timeout = 5.0  # seconds: the delays add up to 1.15 s, so a wrong answer costs little

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        received: list[str | bytes] = []

        async def slow_echo(websocket: ServerConnection) -> None:
            async for message in websocket:
                received.append(message)
                await asyncio.sleep(ECHO_DELAYS_MS[(len(received) - 1) % self.count] / 1e3)
                await websocket.send(message)

        with scratch_server(lessons=[], routes={"/echo": slow_echo}) as server:
            started = time.perf_counter()
            times = self.run(answer, server.links.ws("/echo"), self.count, timeout=self.timeout)
            wall_ms = (time.perf_counter() - started) * 1e3
        return self._judge(times, received, wall_ms)

    def _judge(self, times: object, received: list[str | bytes], wall_ms: float) -> CheckResult:
        n = self.count
        if not isinstance(times, list) or not all(isinstance(t, int | float) for t in times):
            return CheckResult(False, f"return a list of numbers, not {type(times).__name__}")
        if len(times) != n:
            return CheckResult(False, f"asked for {n} round trips, got {len(times)} times")
        if len(received) != n:
            return CheckResult(False, f"the server received {len(received)} messages, not {n}")
        if not _matches(times, ECHO_DELAYS_MS):
            if _in_seconds(times, wall_ms):
                return CheckResult(False, "these look like seconds: return milliseconds (× 1000)")
            slowest = ", ".join(f"{d} ms" for d in ECHO_DELAYS_MS)
            return CheckResult(
                False,
                f"the check's server waits {slowest} before its replies, "
                f"but your times are {_listed(times)}: start the clock before "
                "send() and stop it after recv()",
            )
        if sum(times) > wall_ms:
            return CheckResult(
                False,
                "the times add up to more than the whole call took: time one message at a time",
            )
        return CheckResult(
            True,
            f"{n} round trips of {_listed(times)} (the check's server "
            f"waited {_listed(ECHO_DELAYS_MS)} before replying)",
        )


def _matches(times: list[float], delays_ms: tuple[int, ...], slack_ms: float = 1000) -> bool:
    """Each time at least its delay, and at most ``slack_ms`` more (a busy laptop)."""
    return all(d <= t < d + slack_ms for t, d in zip(times, delays_ms, strict=True))


def _in_seconds(times: list[float], wall_ms: float) -> bool:
    """Times that are the round trips in seconds: each at least its delay when scaled by
    1000, and together about the whole call (so they did wait for the replies; times that
    did not are sub-millisecond and add up to nearly nothing). A busy machine adds to each
    round trip, so no upper bound per message, only the total."""
    scaled = [t * 1e3 for t in times]
    waited = all(d <= t for t, d in zip(scaled, ECHO_DELAYS_MS, strict=True))
    return waited and 0.7 * wall_ms <= sum(scaled) <= 1.05 * wall_ms


def _listed(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " ms"


q1 = ShoutHandler("q1")
q2 = RoundTripTimer("q2")
