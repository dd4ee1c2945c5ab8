"""Exercises of notebook 02 (the bouncing ball): count frames per second; steer into a
corner; the server's drift-free ticker.

from workshop_lib.checks.ball import q1, q2, ____
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ..ball.server import BallLesson
from ..clients.proxies import proxy_for
from ._base import CheckResult, Exercise, Failed, ____, scratch_server, wait_until

__all__ = ["CHECK_RATE", "____", "q1", "q2", "q3"]

# The check's server ticks at this rate, not the usual 60, so that a hard-coded 60 fails.
CHECK_RATE = 25


class FrameCounter(Exercise):
    """q1: a client coroutine that measures the stream's frames per second."""

    hint_text = (
        "connect, then `async for message in websocket:` count frames until "
        "`time.perf_counter() - start >= seconds`; return count / elapsed seconds."
    )
    solution_file = "02_count_frames.py"
    answer_name = "count_frames"
    seconds = 2.0
    timeout_hint = (
        "the stream never ends by itself, so your loop must `break` once "
        "`time.perf_counter() - start >= seconds`"
    )

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with scratch_server(lessons=[BallLesson(rate=CHECK_RATE)]) as server:
            # Two seconds of listening, and a little more: a wrong answer costs seconds.
            fps = self.run(answer, server.links.ws("/ball"), self.seconds, timeout=5)
        if isinstance(fps, bool) or not isinstance(fps, int | float):
            return CheckResult(False, f"return a number of frames per second, not {fps!r}")
        if abs(fps - CHECK_RATE) > 0.15 * CHECK_RATE:
            return CheckResult(
                False,
                f"the check's server sends {CHECK_RATE} frames a second, "
                f"you measured {fps:.1f}: count every ball.state message and "
                "divide by the seconds you really listened",
            )
        return CheckResult(
            True,
            f"{fps:.1f} frames per second (the check's server ticks at "
            f"{CHECK_RATE} Hz; yours runs at 60)",
        )


class CornerSteerer(Exercise):
    """q2: a client coroutine that steers the ball into a corner and pauses it there."""

    hint_text = (
        "a kick adds its dx and dy to the velocity the ball has, (ball['vx'], ball['vy']): "
        "what must you add to that to get (want_vx, want_vy)? Pass each through clamp(). "
        "The pause is JSON text, like the kick; it is there when abs(gap_x) and abs(gap_y) "
        "are both small."
    )
    solution_file = "02_steer.py"
    answer_name = "steer_to_corner"
    tolerance = 0.03
    timeout_hint = (
        "return (or `break`) once the pause is sent: the stream never ends by itself; "
        "or your kicks never brought the ball within 0.02 of the corner"
    )

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with scratch_server(lessons=[BallLesson()]) as server:
            lesson = server.lesson("ball")
            self.run(answer, server.links.ws("/ball"), timeout=8)
            # The answer's last event may still be on its way when it returns: the server has
            # handled all of them once the connection is gone. Judge the ball after that, so a
            # busy machine gives the same reason as an idle one.
            wait_until(lambda: not lesson.clients, timeout=3)
            state = lesson.state
        r = state.radius
        corners = [(cx, cy) for cx in (r, 1 - r) for cy in (r, 1 - r)]
        distance = min(max(abs(state.x - cx), abs(state.y - cy)) for cx, cy in corners)
        where = f"the ball ended at ({state.x:.3f}, {state.y:.3f}) with radius {r:.2f}"
        if not state.paused:
            return CheckResult(False, f"{where} and still moving: pause it when it is there")
        if distance > self.tolerance:
            return CheckResult(
                False,
                f"{where}, {distance:.3f} from the nearest corner "
                f"(at most {self.tolerance} counts)",
            )
        return CheckResult(True, f"{where}: in the corner, paused")


class BroadcastTicker(Exercise):
    """q3: the server's ticker: a tick event to every client, at a fixed rate, drift-free.

    The check runs ``ticker(clients, step, rate, seconds)`` on its server's loop, with three
    real clients in ``clients`` and a ``step()`` that takes 8 ms, as a real tick's work does.
    """

    hint_text = (
        "after the tick's work and the broadcast, sleep until tick n + 1's scheduled time: "
        "`await asyncio.sleep(max(0.0, start + n / rate - loop.time()))`, not `1 / rate`, "
        "which adds each tick's work (and the timer's lateness) to the period."
    )
    solution_file = "02_ticker.py"
    answer_name = "ticker"
    rate = 50
    seconds = 1.0
    work = 0.008  # a naive ticker then takes 1.4 s or more for its 50 ticks

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        clients: set[Any] = set()
        steps: list[tuple[float, float]] = []  # when each tick's work began and ended

        def step() -> None:
            began = time.monotonic()
            time.sleep(self.work)
            steps.append((began, time.monotonic()))

        async def listener(websocket: Any) -> None:
            clients.add(websocket)  # the ticker's audience
            try:
                await websocket.wait_closed()
            finally:
                clients.discard(websocket)

        async def echo(websocket: Any) -> None:
            async for message in websocket:
                await websocket.send(message)

        expected = int(self.rate * self.seconds)
        with (
            scratch_server(lessons=[], routes={"/ticks": listener, "/ping": echo}) as server,
            contextlib.ExitStack() as stack,
        ):
            url = server.links.ws("/ticks")
            readers = [
                stack.enter_context(connect(url, close_timeout=1, proxy=proxy_for(url)))
                for _ in range(3)
            ]
            if not wait_until(lambda: len(clients) == 3, timeout=3):
                raise Failed("the check's three clients did not connect (try again)")
            # A fourth client pings the same server all along: while the ticker waits, the
            # server's loop must be free to answer it, as it must for every other client.
            ping_url = server.links.ws("/ping")
            pinger = _Pinger(
                stack.enter_context(connect(ping_url, close_timeout=1, proxy=proxy_for(ping_url)))
            )
            stack.callback(pinger.stop)
            if not wait_until(lambda: pinger.answered, timeout=3):
                raise Failed("the check's pinging client did not connect (try again)")
            started = time.monotonic()
            # Generous: a drifting ticker takes 1.4 s here, more on a busy machine, and is
            # told it drifts rather than that it never stopped.
            timeout = self.seconds * 3 + 1
            try:
                server.run(answer(clients, step, self.rate, self.seconds), timeout=timeout)
            except TimeoutError:
                if len(steps) < expected and _waits_when_late(steps, self.rate):
                    raise Failed(
                        self._drifts(
                            f"after {timeout:g} s it was still at tick {len(steps)} of {expected}"
                        )
                    ) from None
                raise Failed(
                    f"ticker was still running after {timeout:g} s, asked for "
                    f"{self.seconds:g} s: stop after {expected} ticks"
                ) from None
            took = time.monotonic() - started
            stall = pinger.longest_silence(started, started + took)
            if stall >= max(0.5, 0.6 * took):
                raise Failed(
                    f"while your ticker ran ({took:.2f} s), the server answered nothing for "
                    f"{stall:.2f} s: `time.sleep(...)` blocks the server. Its one event loop "
                    "can do nothing else meanwhile, so every client stalls (here a client "
                    "that pinged it got no answer). Wait with `await asyncio.sleep(...)`, "
                    "which lets the loop serve everyone until the next tick"
                )
            received = [_drain(reader) for reader in readers]
        ticks = [[event.get("n") for event in events] for events in received]
        counts = [len(t) for t in ticks]
        if len(set(counts)) > 1 or ticks[0] != ticks[1] or ticks[1] != ticks[2]:
            return CheckResult(
                False,
                f"the three clients got {counts} ticks, not the same ones: send each tick to "
                "every connection in clients: `broadcast(clients, message)`",
            )
        if ticks[0] != list(range(1, len(ticks[0]) + 1)):
            return CheckResult(
                False, f"the ticks should count 1, 2, 3, ...: they began {ticks[0][:5]}"
            )
        if abs(counts[0] - expected) > 2:
            return CheckResult(
                False, f"{counts[0]} ticks came in {took:.2f} s; {expected} were asked for"
            )
        if took <= self.seconds + 0.2:
            return CheckResult(
                True,
                f"{expected} ticks in {took:.2f} s to all three clients, in order, though each "
                f"tick's work took {self.work * 1e3:.0f} ms: no drift",
            )
        # Late: the ticker's own doing, or a machine too busy to wake it on time? A ticker
        # that sleeps until the next tick's time does not wait once it is late.
        if _waits_when_late(steps, self.rate):
            return CheckResult(
                False,
                self._drifts(f"{expected} ticks took {took:.2f} s instead of {self.seconds:g}"),
            )
        return CheckResult(
            True,
            f"{expected} ticks in {took:.2f} s to all three clients, in order: late, because "
            "this machine was too busy to run them on time, but your ticker went straight "
            "on to the next tick whenever it was behind, so it does not drift",
        )

    def _drifts(self, what: str) -> str:
        return (
            f"{what}: the ticker drifts. Each tick's work ({self.work * 1e3:.0f} ms here) "
            "adds to a sleep of 1 / rate; sleep until the tick's scheduled time, "
            "`start + n / rate`, instead"
        )


class _Pinger:
    """A client that sends a message and waits for its echo, again and again, on a thread
    of its own: when each echo came back says when the server was free to answer."""

    def __init__(self, websocket: Any) -> None:
        self.answered: list[float] = []
        self._done = threading.Event()
        self._websocket = websocket
        self._thread = threading.Thread(target=self._ping, name="check-pinger", daemon=True)
        self._thread.start()

    def _ping(self) -> None:
        while not self._done.is_set():
            try:
                self._websocket.send("ping")
                self._websocket.recv(timeout=10)
            except (TimeoutError, ConnectionClosed):
                return
            self.answered.append(time.monotonic())
            time.sleep(0.005)  # often enough to time a stall, not so often it makes one

    def longest_silence(self, start: float, end: float) -> float:
        """The longest time between ``start`` and ``end`` with no echo coming back."""
        times = [start, *(t for t in self.answered if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    def stop(self) -> None:
        self._done.set()
        self._websocket.close()
        self._thread.join(timeout=5)


def _waits_when_late(steps: list[tuple[float, float]], rate: float) -> bool:
    """Whether a ticker, already late for its next tick when a tick's work ends, mostly
    still waits a whole period before the next: ``sleep(1 / rate)`` does; a sleep until
    the scheduled time (zero once late) does not, however busy the machine."""
    if len(steps) < 6:
        return False
    period, start = 1 / rate, steps[0][0]
    waits = [
        next_began - ended >= 0.9 * period
        for n, ((_, ended), (next_began, _)) in enumerate(itertools.pairwise(steps), start=1)
        if ended >= start + n * period  # tick n + 1 was due already
    ]
    return len(waits) >= 5 and sum(waits) > len(waits) / 2


def _drain(websocket: Any) -> list[dict[str, Any]]:
    """Every event already sent to ``websocket`` (the ticker is done)."""
    events = []
    while True:
        try:
            message = websocket.recv(timeout=0.3)  # all was sent before the ticker returned
        except (TimeoutError, ConnectionClosed):
            return events
        try:
            event = json.loads(message)
        except ValueError:
            raise Failed(
                f'send JSON events like {{"type": "tick", "n": 1}}, not {message!r}'
            ) from None
        if not isinstance(event, dict):
            raise Failed(f'send JSON objects like {{"type": "tick", "n": 1}}, not {message!r}')
        events.append(event)


q1 = FrameCounter("q1")
q2 = CornerSteerer("q2")
q3 = BroadcastTicker("q3")
