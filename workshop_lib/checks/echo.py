"""Exercises of notebook 01 (echo): a handler that transforms messages, a round-trip timer.

from workshop_lib.checks.echo import q1, q2, ____
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ..clients.proxies import proxy_for
from ._base import CheckResult, Exercise, ____, scratch_server, wait_until

__all__ = ["ECHO_DELAYS_MS", "____", "q1", "q2"]

# The check's echo server waits this long before its replies (the n-th delay for the n-th
# message), so a real measurement of each round trip cannot come out shorter, and a list in
# seconds shows the same pattern a thousand times smaller.
ECHO_DELAYS_MS = (100, 300, 150, 400, 200)


class ShoutHandler(Exercise):
    """q1: a handler that answers every text message in capitals, followed by "!"."""

    hint_text = (
        "the loop and the send are there already: only what you send back changes. "
        "A Python string has a method that gives it in capital letters (try `dir(str)` or "
        '`help(str)`), and `+` puts two strings together, so `"HELLO" + "!"` is `"HELLO!"`.'
    )
    solution_file = "01_shout.py"
    answer_name = "a handler"
    messages = ("hello", "WebSockets are fun", "straße, ü and 1, 2, 3")

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        ended: list[BaseException | None] = []  # how the handler ended: what it raised, or None

        async def watched(websocket: ServerConnection) -> None:
            try:
                await answer(websocket)
            except Exception as exc:
                ended.append(exc)
                raise  # the server closes with 1011, as it would for the learner's server
            ended.append(None)

        with (
            scratch_server(lessons=[], routes={"/shout": watched}) as server,
            connect(
                url := server.links.ws("/shout"), open_timeout=5, proxy=proxy_for(url)
            ) as websocket,
        ):
            for answered, message in enumerate(self.messages):
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
                    return CheckResult(False, self._closed(message, answered, ended, exc))
                if reply != expected:
                    return CheckResult(
                        False, f"sent {message!r}, expected {expected!r}, got {reply!r}"
                    )
        return CheckResult(
            True, f"your handler answered {len(self.messages)} messages on one connection, in order"
        )

    @staticmethod
    def _closed(
        message: str, answered: int, ended: list[BaseException | None], exc: ConnectionClosed
    ) -> str:
        """Why the server closed the connection: what the handler raised, or that it ended."""
        wait_until(lambda: ended, 1)  # the handler ends before the server closes
        if ended and ended[0] is not None:
            raised = ended[0]
            return (
                f"sent {message!r}, and your handler raised {type(raised).__name__}: {raised} "
                "(so the server closed the connection with 1011, internal error)"
            )
        if ended:
            after = "one message" if answered == 1 else f"{answered} messages"
            return (
                f"sent {message!r}, but your handler returned after {after}, and a handler "
                "that returns closes its connection: loop with `async for message in "
                "websocket:`, so it answers every message"
            )
        return f"sent {message!r} and the server closed the connection ({exc})"


class RoundTripTimer(Exercise):
    """q2: a client coroutine that times n echo round trips, in milliseconds."""

    hint_text = (
        "each turn of the loop is one round trip, timed on its own: note the time, send a "
        "message, wait for its echo, then work out how long that took. "
        "`time.perf_counter()` counts in seconds, and the check wants milliseconds."
    )
    solution_file = "01_round_trips.py"
    answer_name = "measure_round_trips"
    timeout_hint = "does every send get its recv?"
    count = len(ECHO_DELAYS_MS)
    timeout = 5.0  # seconds: the delays add up to 1.15 s, so a wrong answer costs little

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        received: list[str | bytes] = []
        arrived: list[float] = []  # when each message reached the server
        echoed: list[float] = []  # when the server began to send each echo

        async def slow_echo(websocket: ServerConnection) -> None:
            # Read every message as it comes, and answer them one by one, each after its
            # delay: so the check sees a message sent before the last one's echo.
            queue: asyncio.Queue[str | bytes] = asyncio.Queue()

            async def answer_in_turn() -> None:
                for n in itertools.count():
                    message = await queue.get()
                    await asyncio.sleep(ECHO_DELAYS_MS[n % self.count] / 1e3)
                    echoed.append(time.monotonic())
                    await websocket.send(message)

            replier = asyncio.create_task(answer_in_turn())
            try:
                async for message in websocket:
                    arrived.append(time.monotonic())
                    received.append(message)
                    queue.put_nowait(message)
            finally:
                replier.cancel()

        with scratch_server(lessons=[], routes={"/echo": slow_echo}) as server:
            started = time.perf_counter()
            times = self.run(answer, server.links.ws("/echo"), self.count, timeout=self.timeout)
            wall_ms = (time.perf_counter() - started) * 1e3
        # The first message that reached the server before the previous one's echo left it.
        early = next(
            (n for n in range(1, len(arrived)) if n > len(echoed) or arrived[n] < echoed[n - 1]),
            None,
        )
        return self._judge(times, received, wall_ms, early)

    def _judge(
        self,
        times: object,
        received: list[str | bytes],
        wall_ms: float,
        early: int | None = None,
    ) -> CheckResult:
        n = self.count
        if not isinstance(times, list) or not all(isinstance(t, int | float) for t in times):
            return CheckResult(False, f"return a list of numbers, not {type(times).__name__}")
        if len(times) != n:
            return CheckResult(False, f"asked for {n} round trips, got {len(times)} times")
        if len(received) != n:
            return CheckResult(False, f"the server received {len(received)} messages, not {n}")
        if early is not None:
            return CheckResult(
                False,
                f"message {early + 1} reached the server before the echo of message {early} "
                "had left it: you sent without receiving. A round trip ends when its echo "
                "is back, so wait for each echo before the next send (`await websocket.recv()`)",
            )
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
