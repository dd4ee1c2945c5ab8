"""The bouncing-ball lesson on the network: one ball, a ticker, every client in sync.

The server owns the only ball. A ticker advances it at a fixed rate and pushes the same
``ball.state`` frame to every client; clients steer it with ``ball.control`` and
``ball.kick``, and every client sees the effect on the next frame::

    start_server(lessons=[BallLesson(rate=60)])   # /ball and /api/ball; the ticker runs
                                                  # while the server does

**Conflation.** A state stream only needs the latest state. A client whose connection is
not keeping up (its write buffer holds more than ``backlog_limit`` bytes) skips frames
until it has caught up, instead of queueing stale ones: the server's memory stays bounded
and the other clients do not notice. A small socket send buffer keeps the kernel from
hiding a large queue of stale frames, too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection

from ..backlog import limit_send_buffer
from ..fanout import fanout
from ..lesson import Handler, JsonRoute, Lesson, Page
from ..protocol import HEARTBEAT, HEARTBEAT_REPLY, ProtocolError, encode, parse_event
from .model import BallState, apply_control, apply_kick, state_event, step

__all__ = ["BallLesson"]

logger = logging.getLogger("workshop_lib.ball")

EVENTS = {"ball.control", "ball.kick", HEARTBEAT}


class BallLesson(Lesson):
    """The ball's state, its ticker, the ``/ball`` handler and ``GET /api/ball``.

    ``rate``: ticks (frames) per second.
    """

    name = "ball"
    pages = (Page("ball", "Bouncing ball", "ball.js"),)

    def __init__(
        self,
        rate: float = 60.0,
        backlog_limit: int = 8 * 1024,
        send_buffer: int = 16 * 1024,
    ) -> None:
        self.rate = rate
        self.backlog_limit = backlog_limit  # bytes waiting for one client before it skips
        self.send_buffer = send_buffer  # SO_SNDBUF for each /ball socket
        self.state = BallState()
        self.frame = self._encode(self.state)
        self.clients: set[ServerConnection] = set()
        self.frames_skipped = 0  # frames not sent to a client that was behind
        self._ticker: asyncio.Task[None] | None = None

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/ball": self.handler}

    def http_routes(self) -> Mapping[str, JsonRoute]:
        return {"/api/ball": self.snapshot}  # for the push-against-polling comparison

    def stats(self) -> dict[str, object]:
        return {"tick": self.state.tick, "frames_skipped": self.frames_skipped}

    # -- the ticker ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start ticking (on the server's loop)."""
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick_forever(), name="ball-ticker")

    async def stop(self) -> None:
        """Stop ticking."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate
        started = loop.time()
        tick = 0
        while True:
            # Sleep until the next tick's *scheduled* time, not for a fixed period after
            # this one's work: a fixed sleep adds the work and the timer's lateness to
            # every frame, and 60 Hz drifts to ~43 Hz.
            tick += 1
            delay = started + tick * period - loop.time()
            if delay < -period:
                # More than a tick late (the machine stalled): simulate the missed ticks
                # but send only the latest state, rather than a burst of stale frames.
                missed = int(-delay / period)
                for _ in range(missed):
                    self.state = step(self.state, period)
                tick += missed
            # Await on every tick, even a late one: a ticker that only sleeps when early
            # would starve every other task on the loop (reads, new connections, closes)
            # as soon as one broadcast takes longer than a tick.
            await asyncio.sleep(max(delay, 0.0))
            self.state = step(self.state, period)
            self.publish()

    def publish(self) -> None:
        """Send the current state to every client that is keeping up."""
        self.frame = self._encode(self.state)
        if not self.clients:
            return
        # The hot path: 60 times a second for every client. fanout() frames the state once
        # for all clients (websockets' broadcast() frames it once per client) and skips, in
        # the same pass, the clients that are behind.
        result = fanout(self.clients, self.frame, backlog_limit=self.backlog_limit)
        self.frames_skipped += len(result.behind)

    @staticmethod
    def _encode(state: BallState) -> str:
        return encode(state_event(state, time.time()))

    def snapshot(self) -> dict[str, Any]:
        """The current state as a dict (what ``GET /api/ball`` returns)."""
        return state_event(self.state, time.time())

    # -- the handler --------------------------------------------------------------------------

    async def handler(self, websocket: ServerConnection) -> None:
        """Register the client, send it the current frame at once, then apply its events."""
        limit_send_buffer(websocket, self.send_buffer)
        self.clients.add(websocket)
        try:
            await websocket.send(self.frame)  # the first frame arrives right after connecting
            async for message in websocket:
                try:
                    event = parse_event(message, EVENTS)
                    if event["type"] == HEARTBEAT:
                        await websocket.send(HEARTBEAT_REPLY)
                    elif event["type"] == "ball.control":
                        self.state = apply_control(self.state, event)
                    else:
                        self.state = apply_kick(self.state, event)
                except ProtocolError as error:
                    await websocket.send(error.event())
                # The change goes out with the next tick, to everyone at once.
        finally:
            self.clients.discard(websocket)
