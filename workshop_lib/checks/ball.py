"""Exercises of notebook 02 (the bouncing ball): count frames per second; steer into a corner.

from workshop_lib.checks.ball import q1, q2, ____
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..ball.server import BallLesson
from ._base import CheckResult, Exercise, ____, scratch_server

__all__ = ["CHECK_RATE", "____", "q1", "q2"]

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
        "read a frame; the corner is at (1 - radius, 1 - radius); kick by the velocity you "
        "want minus the velocity you have (each within -2..2), keep reading frames, and send "
        '{"type": "ball.control", "paused": true} once x and y are within 0.02 of the corner.'
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
            _wait_until(lambda: not lesson.clients, timeout=3)
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


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


q1 = FrameCounter("q1")
q2 = CornerSteerer("q2")
