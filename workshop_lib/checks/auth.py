"""Exercises of notebook 04 (auth, errors, lifecycle): log in like a browser; survive a restart.

from workshop_lib.checks.auth import q1, q2, ____
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import itertools
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..app.auth import new_token
from ..ball.server import BallLesson
from ..echo.server import EchoLesson
from ._base import (
    CheckResult,
    Exercise,
    Failed,
    ____,
    run_coroutine,
    scratch_server,
    wait_until,
)

__all__ = ["____", "q1", "q2"]


class FirstMessageLogin(Exercise):
    """q1: ``echo_as_browser(url, origin, token, text)`` authenticates with a first message."""

    hint_text = (
        'after connecting, `await websocket.send(json.dumps({"type": "auth", "token": token}))`, '
        'then `await websocket.recv()` must be {"type": "auth.ok"} (a wrong token gets an '
        '{"type": "error", ..., "close": 4001} instead: raise); only then send `text` and '
        "return the next message."
    )
    solution_file = "04_login.py"
    answer_name = "echo_as_browser"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        token = new_token()  # a fresh one, so no token typed into the cell can pass
        with scratch_server(token=token, lessons=[EchoLesson()]) as server:
            url, origin = server.links.ws("/echo"), server.http_url
            echoed = self.run(answer, url, origin, token, "it's me", timeout=4)
            if echoed != "it's me":
                return CheckResult(
                    False,
                    f"expected the echo 'it's me', got {echoed!r}"
                    + (": read the auth.ok first, then send" if "auth.ok" in str(echoed) else ""),
                )
            try:
                wrong = self.run(answer, url, origin, "not-the-token", "hello", timeout=4)
            except Failed:
                return CheckResult(
                    False,
                    "with a wrong token the server closed the connection with 4001, but "
                    "echo_as_browser was still running after 4 s: let the ConnectionClosed "
                    "out instead of catching it and waiting",
                )
            except InvalidStatus:
                return CheckResult(
                    False,
                    "a wrong token was refused at the handshake (HTTP 401): you sent a header, "
                    "which a browser cannot do. Log in with the first message instead.",
                )
            except ConnectionClosed as exc:  # closed with 4001: the right outcome
                if exc.rcvd is not None and exc.rcvd.code == 4001:
                    return CheckResult(
                        True, "the right token gets the echo; a wrong one is closed with 4001"
                    )
                raise
            except Exception as exc:
                # The server says "wrong token" in band before its 4001 (a proxy may drop
                # the code): an answer that refuses to go on after reading it is right too.
                if "unauthorized" in str(exc) or "4001" in str(exc):
                    return CheckResult(
                        True,
                        "the right token gets the echo; a wrong one gets the server's error "
                        "event, then the close with 4001",
                    )
                raise
        return CheckResult(False, f"with a wrong token it returned {wrong!r} instead of failing")


class SurviveRestart(Exercise):
    """q2: ``collect_ticks(url, count)`` keeps reading ball frames across a server restart,
    reconnecting with backoff: waits that grow, and jitter.

    The check runs several copies at once, as the people of a room, and notes when each one
    tries to connect (on the loop they run on), so it can time the waits between attempts.
    """

    hint_text = (
        "wrap the connection in `while len(ticks) < count:`; inside, `try: async with "
        "connect(url) as websocket: async for message in websocket: ...`; on OSError or "
        "ConnectionClosed, `await asyncio.sleep(next(delays))` with `delays = backoff_delays()`, "
        "and start a fresh `backoff_delays()` after each successful connect."
    )
    solution_file = "04_reconnect.py"
    answer_name = "collect_ticks"
    copies = 8  # clients that lose the server at the same moment (jitter shows among 8)
    count = 60  # a second of frames at 60 Hz: the restart comes in the middle
    down_at = 0.4  # seconds after all are in, the server stops (every client gets 1001) ...
    tries = 2  # ... and listens again once every copy has tried this many times ...
    down_at_most = 8.0  # ... or after this many seconds (a busy machine slows every try)
    timeout = 16.0  # backoff's waits of about 0.5, 1 and 2 s and the frames take about 5 s

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        servers = [scratch_server(lessons=[BallLesson()])]
        port, url = servers[0].port, servers[0].links.ws("/ball")
        attempts: dict[int, list[float]] = {copy: [] for copy in range(self.copies)}
        refused = dict.fromkeys(range(self.copies), 0)  # attempts that failed, each copy's
        slept: dict[int, list[float]] = {copy: [] for copy in range(self.copies)}
        dropped: list[float] = []
        restarted = threading.Event()
        over = threading.Event()  # the copies have returned (or the check gave up on them)

        def tried_while_down() -> list[list[float]]:
            return [[t for t in times if dropped and t > dropped[0]] for times in attempts.values()]

        def restart() -> None:
            # Every copy streaming first (on a busy machine eight handshakes take a while):
            # a stop would cut a handshake in progress, which no client is asked to survive.
            ball = servers[0].lesson("ball")
            wait_until(lambda: len(ball.clients) >= self.copies or over.is_set(), self.timeout / 2)
            time.sleep(self.down_at)
            dropped.append(time.monotonic())
            servers[0].stop()  # every client gets 1001; the port is closed for a while
            wait_until(
                # Refused, not only begun: an attempt begun just before the restart
                # would reach the new server and leave the check one wait short.
                lambda: over.is_set() or all(n >= self.tries for n in refused.values()),
                self.down_at_most,
            )
            servers.append(scratch_server(port, lessons=[BallLesson()]))
            restarted.set()

        async def together() -> list[Any]:
            async def copy(n: int) -> Any:
                _COPY.set(n)  # the connection attempts made from here on are this copy's
                return await answer(url, self.count)

            return await asyncio.gather(*(copy(n) for n in range(self.copies)))

        threading.Thread(target=restart, name="check-restart", daemon=True).start()
        what = (
            f"the check ran {self.copies} copies of collect_ticks at once, as {self.copies} "
            f"people in a room; its server went away {self.down_at:g} s after they were all in "
            f"(close code 1001) and listened again once each copy had tried {self.tries} times"
        )
        try:
            results = run_coroutine(
                together(), self.timeout, _noting_attempts(attempts, refused, slept)
            )
        except concurrent.futures.TimeoutError:
            over.set()
            restarted.wait(self.timeout)
            came_back = len(servers) == 2 and servers[1].app.served["/ball"] > 0
            raise Failed(
                f"{what}; "
                + (
                    "your clients came back but collect_ticks did not return within "
                    f"{self.timeout:g} s: stop once you have {self.count} ticks"
                    if came_back
                    else "your clients never came back, and collect_ticks was still running "
                    f"after {self.timeout:g} s: catch the ConnectionClosed (and OSError while "
                    "the server is down), wait next(delays), and connect again"
                )
            ) from None
        finally:
            over.set()
            restarted.wait(self.timeout)
            for server in servers:
                server.stop()
        tries = [[dropped[0], *tried] for tried in tried_while_down()]
        return self._judge(what, results, tries, list(slept.values()))

    def _judge(
        self,
        what: str,
        results: list[Any],
        tries: list[list[float]],
        slept: list[list[float]] | None = None,
    ) -> CheckResult:
        """``tries``: for each copy, when the server went away, then each attempt after;
        ``slept``: for each copy, the seconds it asked ``asyncio.sleep`` for, in order."""
        for ticks, times in zip(results, tries, strict=True):
            if len(times) == 1:
                got = len(ticks) if isinstance(ticks, list) else repr(ticks)
                raise Failed(
                    f"{what}; your collect_ticks returned {got} of {self.count} ticks and "
                    "never tried to connect again: reconnect after the drop, until you have "
                    f"{self.count}"
                )
            if not isinstance(ticks, list) or len(ticks) != self.count:
                got = len(ticks) if isinstance(ticks, list) else repr(ticks)
                raise Failed(f"{what}; return a list of {self.count} ticks, not {got}")
        waits = [[b - a for a, b in itertools.pairwise(times)][:3] for times in tries]
        # The first attempt may come at once after the drop; from then on, a client waits.
        hasty = min((w for copy in waits for w in copy[1:]), default=1.0)
        if hasty < 0.05:
            raise Failed(
                f"{what}; your client tried again {hasty * 1e3:.0f} ms after a refused "
                "attempt: without a wait, a room of clients floods a server that is trying "
                "to start. Wait between attempts, longer each time: "
                "`await asyncio.sleep(next(delays))` with `delays = backoff_delays()`"
            )
        if any(len(w) < 3 for w in waits):
            raise Failed(
                f"{what}; your client tried to connect only "
                f"{min(len(w) for w in waits)} times in the {self.down_at_most:g} s it was "
                "down: try again soon after the drop, then wait longer each time "
                "(backoff_delays())"
            )
        listed = "; ".join(", ".join(f"{w:.2f}" for w in copy) for copy in waits)
        for first, second, third in waits:
            # The first wait is timed from the check's stop, so it holds how late the
            # client heard of it (a few hundred ms on a busy machine): only the later two
            # are compared closely. Backoff's are about 0.5, 1 and 2 s (±20 %), so its
            # third is at least 1.33 times its second.
            if not (third >= 1.2 * second and third > first):
                raise Failed(
                    f"{what}; the waits between your client's attempts did not grow: "
                    f"{first:.2f}, {second:.2f}, {third:.2f} s. After each failed attempt, "
                    "wait longer (double the wait, up to a cap): take the waits from one "
                    "backoff_delays(), made before the first attempt, and start a fresh one "
                    "only after a successful connect"
                )
        # Jitter: among the copies, the second or third waits spread over a twentieth of
        # themselves (at least 40 ms). Waits without it differ by what a busy machine adds:
        # some ms, and now and then one copy held up by a stall, which is why the spread is
        # taken without the highest and the lowest copy. (Backoff's ±20 % fails this about
        # once in 60,000 checks; a stall must hold up two copies apart to fake it.)
        jittered = any(
            _inner_spread([c[k] for c in waits])
            >= max(0.04, 0.05 * statistics.median(c[k] for c in waits))
            for k in (1, 2)
        )
        # Better than the clock where the copies waited with asyncio.sleep: the waits they
        # asked for, which a busy machine cannot blur (it spread equal waits by 0.2 s once,
        # and can bunch jittered ones). Equal requests are no jitter, whatever the clock says.
        asked = [copy[:3] for copy in slept or []]
        if asked and all(len(copy) >= 2 for copy in asked):
            jittered = any(
                max(copy[k] for copy in asked) - min(copy[k] for copy in asked) >= 1e-3
                for k in range(min(len(copy) for copy in asked))
            )
        if not jittered:
            raise Failed(
                f"{what}; the copies lost the server at the same moment and retried in "
                f"step, each after the same waits ({listed} s): every client of a room "
                "would knock at the same instants, again and again. Add jitter, a random "
                "part of each wait (backoff_delays() makes each wait ±20 %)"
            )
        return CheckResult(
            True,
            f"{self.copies} copies each got {self.count} frames across a server restart, "
            f"waiting {listed} s between attempts: growing waits, and different from copy "
            "to copy (jitter)",
        )


def _inner_spread(values: list[float]) -> float:
    """The spread of ``values`` without their highest and lowest: one outlier moves it not."""
    ordered = sorted(values)
    return ordered[-2] - ordered[1]


# What asyncio.sleep schedules to wake its caller: how a sleep is told from other timers.
# (Private to asyncio, as in 3.11 to 3.14; without it the check judges jitter by the clock.)
_WAKE_SLEEPER = getattr(asyncio.futures, "_set_result_unless_cancelled", None)

# Which copy of the learner's client is running (set in each copy's task; the tasks it
# starts inherit it), so that each connection attempt is noted as that copy's.
_COPY: contextvars.ContextVar[int] = contextvars.ContextVar("check_copy")


def _noting_attempts(
    attempts: dict[int, list[float]], refused: dict[int, int], slept: dict[int, list[float]]
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory: an event loop that notes when each copy tries to open a connection
    (websockets' ``connect`` opens its TCP connection with ``loop.create_connection``),
    counts each copy's attempts that failed, and notes the seconds each copy asks
    ``asyncio.sleep`` for (which schedules its wake-up with ``loop.call_later``)."""

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        create_connection = loop.create_connection
        call_later = loop.call_later

        def noted_call_later(delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            copy = _COPY.get(None)
            # asyncio.sleep's own wake-up, not websockets' timeouts or a learner's timer.
            if copy is not None and _WAKE_SLEEPER is not None and callback is _WAKE_SLEEPER:
                slept[copy].append(delay)
            return call_later(delay, callback, *args, **kwargs)

        loop.call_later = noted_call_later  # type: ignore[method-assign]

        async def noted(*args: Any, **kwargs: Any) -> Any:
            copy = _COPY.get(None)
            if copy is None:
                return await create_connection(*args, **kwargs)
            attempts[copy].append(time.monotonic())
            try:
                return await create_connection(*args, **kwargs)
            except OSError:
                refused[copy] += 1
                raise

        loop.create_connection = noted  # type: ignore[method-assign]
        return loop

    return new_loop


q1 = FirstMessageLogin("q1")
q2 = SurviveRestart("q2")
