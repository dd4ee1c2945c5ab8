"""A Python client of the ball stream that always holds the latest state.

A 60 Hz stream must be read as fast as it comes, or frames pile up in buffers and
everything the client sees is stale. This client reads on a thread of its own and keeps
only the newest frame (conflation on the client side), counting frames and measuring
delay as it goes::

    with BallClient(server.links.ws("/ball")) as ball:
        ball.control(color="#1f77b4")
        ball.kick(0.5, -0.5)
        print(ball.latest["x"], ball.stats())
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..clients.reading import Event, ReadingClient

__all__ = ["BallClient", "BallStats"]

logger = logging.getLogger("workshop_lib.ball.client")


class BallStats(dict):
    """``frames``, ``fps`` (over the last second), ``delay_ms`` (median, last second), ``tick``."""


class BallClient(ReadingClient):
    """Connects to ``/ball``, reads every frame on a background thread, keeps the latest.

    Usage: ``with BallClient(url) as ball: ball.wait_for_frame(); ball.latest``.
    The constructor returns it connected and reading (see :mod:`workshop_lib.clients.reading`).
    """

    thread_name = "ball-client"

    # ReadingClient's parameters, spelled out so that help(BallClient) and type checkers
    # show them (a *args/**kwargs pass-through would hide them).
    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        token: str | None = None,
        reconnect: bool = False,
    ) -> None:
        super().__init__(url, timeout, token=token, reconnect=reconnect)
        self.latest: Event | None = None
        self.frames = 0
        self.errors: list[Event] = []
        # (arrival time, delay) of the last second's frames, for fps and delay.
        self._recent: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()
        self._first = threading.Event()
        # Called with each new frame on the reader thread (BallControls shows the server's
        # state with it); it must be quick: the next frame waits behind it.
        self.on_state: Callable[[Event], None] | None = None

    def handle(self, event: Event) -> None:
        """Keep the newest frame and the last second's arrivals; collect errors."""
        now = time.time()
        with self._lock:
            if event.get("type") == "ball.state":
                self.latest = event
                self.frames += 1
                self._recent.append((now, (now - event["ts"]) * 1e3))
                while self._recent and self._recent[0][0] < now - 1.0:
                    self._recent.popleft()
            elif event.get("type") == "error":
                self.errors.append(event)
        self._first.set()
        if self.on_state is not None and event.get("type") == "ball.state":
            try:
                self.on_state(event)
            except Exception:  # a bug in a callback must not stop the reading
                logger.exception("on_state failed")

    def wait_for_frame(self, timeout: float = 5.0) -> Event:
        """The latest frame, waiting for the first one if none has come yet."""
        if not self._first.wait(timeout):
            raise TimeoutError(f"no frame from {self.url} within {timeout} s")
        assert self.latest is not None
        return self.latest

    def stats(self) -> BallStats:
        """Frames so far, frames in the last second, median delay in the last second."""
        with self._lock:
            now = time.time()
            recent = sorted(delay for at, delay in self._recent if at >= now - 1.0)
            return BallStats(
                frames=self.frames,
                fps=len(recent),
                delay_ms=recent[len(recent) // 2] if recent else None,
                tick=self.latest["tick"] if self.latest else None,
            )

    def control(self, **fields: Any) -> None:
        """Send ``ball.control`` with any of speed, radius, color, paused."""
        self.send_event({"type": "ball.control", **fields})

    def kick(self, dx: float, dy: float) -> None:
        """Send ``ball.kick``: add ``dx``, ``dy`` to the ball's velocity."""
        self.send_event({"type": "ball.kick", "dx": dx, "dy": dy})

    def send(self, event: Event) -> None:
        """Send any event (errors come back in ``errors``)."""
        self.send_event(event)
