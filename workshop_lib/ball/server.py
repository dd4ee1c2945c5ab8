"""The bouncing-ball lesson on the network: one ball, a ticker, every client in sync.

The server owns the only ball. A ticker (:class:`~workshop_lib.ball.ticker.Ticker`) advances
it at a fixed rate and pushes the same ``ball.state`` frame to every client; clients steer it
with ``ball.control`` and ``ball.kick``, and every client sees the effect on the next frame::

    start_server(lessons=[BallLesson(rate=60)])   # /ball and /api/ball; the ticker runs
                                                  # while the server does

**Conflation.** A state stream only needs the latest state. A client whose connection is
not keeping up (its write buffer holds more than ``backlog_limit`` bytes) skips frames
until it has caught up, instead of queueing stale ones: the server's memory stays bounded
and the other clients do not notice. A small socket send buffer keeps the kernel from
hiding a large queue of stale frames, too.

**Many processes** (``BallLesson(redis="redis://...")``, lesson 06): one process ticks,
the one holding the lease in Redis; the others relay its frames to their clients
(:mod:`~workshop_lib.ball.shared_ball`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from ..app.rates import TokenBucket
from ..lesson import Handler, JsonRoute, Lesson, Page
from ..redis.client import redis_health
from ..wire.backlog import limit_send_buffer
from ..wire.closing import CLOSE_GRACE, close_with
from ..wire.fanout import fanout
from ..wire.protocol import (
    HEARTBEAT,
    HEARTBEAT_REPLY,
    Close,
    ProtocolError,
    encode,
    error_event,
    parse_event,
)
from .model import BallState, apply_event, state_event, step
from .ticker import Ticker

if TYPE_CHECKING:
    from .shared_ball import SharedBall

__all__ = ["BallLesson"]

EVENTS = {"ball.control", "ball.kick", HEARTBEAT}


class BallLesson(Lesson):
    """The ball's state, its ticker, the ``/ball`` handler and ``GET /api/ball``.

    ``rate``: ticks (frames) per second. ``redis``: a Redis URL to share one ball with
    every server process that uses the same Redis (None: this process's ball alone).
    """

    name = "ball"
    pages = (Page("ball", "Bouncing ball", "ball.js"),)
    order = 20  # its place among the installed lessons: lower comes first

    def __init__(
        self,
        rate: float = 60.0,
        backlog_limit: int = 8 * 1024,
        send_buffer: int = 16 * 1024,
        redis: str | None = None,
        lease: float = 1.0,
        redis_prefix: str = "workshop:ball",
        control_rate: float = 60.0,
        control_burst: float = 60.0,
        strikes: float = 20.0,
    ) -> None:
        self.rate = rate
        # Each connection's token bucket for its events: a slider dragged sends one per
        # input event (tens a second); three flooders took the ball from 60 fps to 14.
        self.control_rate, self.control_burst = control_rate, control_burst
        self.strikes = strikes  # refusals (refilling 1/s) before closing with 4029
        # Seconds a flooder gets to read its 4029 event and close first (closing.py).
        self.close_grace = CLOSE_GRACE
        self.backlog_limit = backlog_limit  # bytes waiting for one client before it skips
        self.send_buffer = send_buffer  # SO_SNDBUF for each /ball socket
        self.state = BallState()
        self.frame = self._encode(self.state)
        self.clients: set[ServerConnection] = set()
        self.frames_skipped = 0  # frames not sent to a client that was behind
        # Called on the loop with each new frame, before the clients get it: how another
        # transport (ball/http_push.py: Server-Sent Events, long polling) serves the same
        # ball at the same tick.
        self.frame_listeners: list[Callable[[str], None]] = []
        self.ticker = Ticker(rate, self._tick, name="ball-ticker")
        self.redis_url = redis
        self.lease = lease  # seconds: how soon another process ticks after the ticker died
        self.redis_prefix = redis_prefix  # one ball per prefix in the same Redis
        self.shared: SharedBall | None = None  # with Redis, once started

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/ball": self.handler}

    def http_routes(self) -> Mapping[str, JsonRoute]:
        return {"/api/ball": self.snapshot}  # for the push-against-polling comparison

    @property
    def leading(self) -> bool:
        """Whether this process ticks (always, while started, without Redis)."""
        return self.shared.leading if self.shared is not None else self.ticker.running

    @property
    def redis_ok(self) -> bool | None:
        """None: no Redis; else whether it answers."""
        return self.shared.healthy if self.shared is not None else None

    def stats(self) -> dict[str, object]:
        stats: dict[str, object] = {"tick": self.state.tick, "frames_skipped": self.frames_skipped}
        if self.shared is not None:
            stats.update(redis_health(self.shared.healthy))
            stats["ticking_here"] = self.shared.leading
            stats["frames_unpublished"] = self.shared.frames_unpublished
        return stats

    def health(self) -> dict[str, str]:
        return redis_health(self.redis_ok)

    async def start(self) -> None:
        """Start ticking (on the server's loop); with Redis, tick only while this process
        holds the lease, and relay the ticker's frames otherwise."""
        if self.redis_url is None:
            self.ticker.start()
            return
        from .shared_ball import SharedBall  # only a server with Redis needs redis-py

        self.shared = SharedBall(self, self.redis_url, self.redis_prefix, self.lease)
        await self.shared.start()

    async def stop(self) -> None:
        """Stop ticking (and with Redis, give the lease up so another process ticks now)."""
        if self.shared is not None:
            await self.shared.stop()  # kept: its figures stay in stats()
        await self.ticker.stop()

    # -- the ball -------------------------------------------------------------------------------

    def _tick(self, steps: int) -> None:
        """The ticker's call: the ball ``steps`` ticks on (more than one after a stall, of
        which only the latest state is sent), to every client."""
        period = 1.0 / self.rate
        for _ in range(steps):
            self.state = step(self.state, period)
        # Our own clients first, straight from the ticker: not a round trip through Redis,
        # and not a JSON decode of our own frame (the relay skips it).
        self.publish()
        if self.shared is not None:
            self.shared.publish(self.frame, self.state)

    def apply(self, event: dict[str, Any]) -> None:
        """Apply a ``ball.control`` or ``ball.kick`` to the ball (a ProtocolError if bad);
        the change goes out with the next tick, to everyone at once."""
        self.state = apply_event(self.state, event)

    def publish(self) -> None:
        """Send the current state to every client that is keeping up."""
        self.frame = self._encode(self.state)
        self._send_frame()

    def show(self, frame: str, state: BallState | None) -> None:
        """Send a frame ticked elsewhere (another process) as this ball's current one."""
        self.frame = frame
        if state is not None:
            self.state = state
        self._send_frame()

    def _send_frame(self) -> None:
        for listener in self.frame_listeners:
            listener(self.frame)
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
        bucket = TokenBucket(self.control_burst, self.control_rate)
        patience = TokenBucket(self.strikes, 1.0)  # as the chat's: refusals run it dry
        try:
            await websocket.send(self.frame)  # the first frame arrives right after connecting
            async for message in websocket:
                now = time.monotonic()
                if not bucket.take(now):
                    if not patience.take(now):
                        # No more frames after the event, while the flooder is given time to
                        # read it and close (the grace).
                        self.clients.discard(websocket)
                        await close_with(
                            websocket,
                            Close.RATE_LIMITED,
                            "rate limited: too many messages",
                            message=f"rate limited: far over {self.control_rate:g} messages "
                            "a second for too long, so the server closed this connection",
                            grace=self.close_grace,
                        )
                        break
                    await websocket.send(
                        error_event(
                            "rate_limited",
                            f"slow down: at most {self.control_rate:g} messages a second "
                            f"(bursts of {self.control_burst:g}); this one was dropped",
                        )
                    )
                    continue
                try:
                    event = parse_event(message, EVENTS)
                    if event["type"] == HEARTBEAT:
                        await websocket.send(HEARTBEAT_REPLY)
                    elif self.shared is not None:
                        await self.shared.pass_on(event)  # the ticker may be elsewhere
                    else:
                        self.apply(event)
                except ProtocolError as error:
                    await websocket.send(error.event())
        finally:
            self.clients.discard(websocket)
