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

**Many processes** (``BallLesson(redis="redis://...")``, lesson 06): one process ticks,
the one holding the lease in Redis (:mod:`~workshop_lib.ball.redis_relay`). It sends each
frame to its own clients and publishes it; every other process relays it to its clients,
and every process passes its clients' controls on to the ticker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from ..backlog import limit_send_buffer
from ..chat.model import TokenBucket
from ..closing import CLOSE_GRACE, close_with
from ..fanout import fanout
from ..lesson import Handler, JsonRoute, Lesson, Page
from ..protocol import (
    HEARTBEAT,
    HEARTBEAT_REPLY,
    Close,
    ProtocolError,
    encode,
    error_event,
    parse_event,
)
from ..redis_local import cancel_tasks, redis_health
from .model import BallState, apply_control, apply_kick, state_event, step

if TYPE_CHECKING:
    from .redis_relay import BallRelay

__all__ = ["BallLesson"]

logger = logging.getLogger("workshop_lib.ball")

EVENTS = {"ball.control", "ball.kick", HEARTBEAT}


# Frames on their way to Redis at once, each on a connection of the pool: enough that a
# loop that reads the answers a few ticks late still publishes every tick.
PUBLISHERS = 3


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
        self._ticker: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()  # frames on their way to Redis
        self._unsent: tuple[str, BallState] | None = None  # the frame waiting behind them
        self.frames_unpublished = 0  # frames replaced by a newer one before Redis took them
        self.redis_url = redis
        self.lease = lease  # seconds: how soon another process ticks after the ticker died
        self.redis_prefix = redis_prefix  # one ball per prefix in the same Redis
        self.relay: BallRelay | None = None
        self.redis_ok: bool | None = None  # None: no Redis; else whether it answers
        self.leading = False  # this process ticks (always, without Redis)
        self._tasks: list[asyncio.Task[None]] = []

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/ball": self.handler}

    def http_routes(self) -> Mapping[str, JsonRoute]:
        return {"/api/ball": self.snapshot}  # for the push-against-polling comparison

    def stats(self) -> dict[str, object]:
        stats: dict[str, object] = {"tick": self.state.tick, "frames_skipped": self.frames_skipped}
        if self.redis_ok is not None:
            stats.update(redis_health(self.redis_ok))
            stats["ticking_here"] = self.leading
            stats["frames_unpublished"] = self.frames_unpublished
        return stats

    # -- the ticker ---------------------------------------------------------------------------

    def health(self) -> dict[str, str]:
        return redis_health(self.redis_ok)

    async def start(self) -> None:
        """Start ticking (on the server's loop); with Redis, start following its ticker."""
        if self.redis_url is None:
            self._start_ticker()
            self.leading = True
            return
        from .redis_relay import BallRelay  # only a server with Redis needs redis-py

        self.relay = BallRelay(self.redis_url, prefix=self.redis_prefix, lease=self.lease)
        self.redis_ok = False
        self._tasks = [
            asyncio.create_task(self._lead_forever(), name="ball-lease"),
            asyncio.create_task(self._relay_forever(), name="ball-relay"),
        ]

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick_forever(), name="ball-ticker")

    async def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self._unsent = None
        await cancel_tasks(list(self._publishing))  # redis-py may swallow one cancel
        self._publishing.clear()

    async def stop(self) -> None:
        """Stop ticking (and with Redis, give the lease up so another process ticks now)."""
        await cancel_tasks(self._tasks)
        await self._stop_ticker()
        if self.relay is not None:
            if self.leading:
                with contextlib.suppress(Exception):  # Redis may be gone: the lease expires
                    await self.relay.resign()
            await self.relay.close()
            self.relay = None
        self.leading = False

    # -- many processes -------------------------------------------------------------------

    async def _lead_forever(self) -> None:
        """Hold (or wait for) the ticker's lease, a few times per lease: tick while held."""
        assert self.relay is not None
        from redis.exceptions import RedisError

        controls: asyncio.Task[None] | None = None
        while True:
            try:
                await self.relay.connect()
                leading = await self.relay.lead()
                self.redis_ok = True
            except (RedisError, OSError):
                leading, self.redis_ok = False, False
            if leading and not self.leading:
                with contextlib.suppress(Exception):
                    self.state = await self.relay.load() or self.state
                logger.info("this process ticks the ball now (tick %d)", self.state.tick)
                self._start_ticker()
                controls = asyncio.create_task(self._apply_controls(), name="ball-controls")
                self._tasks.append(controls)  # stop() cancels it with the others
            elif not leading and self.leading:
                await self._stop_ticker()
                if controls is not None:
                    self._tasks.remove(controls)
                    # Not one more pop: a control taken now would be applied to a ball that
                    # no longer ticks here, and lost (redis-py may swallow one cancel).
                    await cancel_tasks([controls])
                    controls = None
            self.leading = leading
            await asyncio.sleep(self.lease / 4)

    async def _apply_controls(self) -> None:
        """The ticker's side: controls from clients on every process, for as long as it
        ticks, through Redis going away and coming back (_lead_forever cancels it)."""
        assert self.relay is not None
        from redis.exceptions import RedisError

        while True:
            try:
                async for event in self.relay.controls():
                    with contextlib.suppress(ProtocolError):  # checked where it came in
                        if event.get("type") == "ball.control":
                            self.state = apply_control(self.state, event)
                        else:
                            self.state = apply_kick(self.state, event)
            except (RedisError, OSError):
                await asyncio.sleep(self.lease / 4)

    async def _relay_forever(self) -> None:
        """Every process but the ticker's: its frames to this process's clients, conflated."""
        assert self.relay is not None
        from redis.exceptions import RedisError

        while True:
            try:
                await self.relay.connect()
                async for frame in self.relay.frames():
                    if self.leading:  # the ticker sent it to our clients already
                        continue
                    event = json.loads(frame)
                    tick = event.get("tick")
                    if isinstance(tick, int) and 0 < self.state.tick - tick < 2 * self.rate:
                        continue  # overtaken by a newer frame (published on another connection)
                    self.frame = frame
                    with contextlib.suppress(TypeError, ValueError):
                        self.state = BallState(
                            **{k: event[k] for k in BallState.__dataclass_fields__}
                        )
                    self._send_frame()
            except (RedisError, OSError):
                self.redis_ok = False
                await asyncio.sleep(self.lease / 4)  # Redis is away: try again shortly

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
            # Our own clients first, straight from the ticker: not a round trip through
            # Redis, and not a JSON decode of our own frame (the relay skips it).
            self.publish()
            if self.relay is None:
                continue
            # To the other processes without waiting for Redis: a slow or stalled Redis must
            # not hold up this process's clients or the ticker's schedule. A few frames are
            # on their way at once (a busy loop reads Redis's answers late: one at a time
            # lost 5 % of the frames at 1,000 clients), and one waits behind them; a newer
            # frame replaces the waiting one (only the latest matters, as everywhere here).
            if self._unsent is not None:
                self.frames_unpublished += 1
            self._unsent = (self.frame, self.state)
            if len(self._publishing) < PUBLISHERS:
                task = asyncio.create_task(self._publish_shared(), name="ball-publish")
                self._publishing.add(task)
                task.add_done_callback(self._publishing.discard)

    async def _publish_shared(self) -> None:
        """Publish the waiting frame, and the one that waits after it, until none waits."""
        assert self.relay is not None
        from redis.exceptions import RedisError

        while self._unsent is not None:
            frame, state = self._unsent
            self._unsent = None
            with contextlib.suppress(RedisError, OSError):  # the lease loop notices
                await self.relay.publish(frame, state)

    def publish(self) -> None:
        """Send the current state to every client that is keeping up."""
        self.frame = self._encode(self.state)
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
                    elif self.relay is not None:
                        await self._pass_on(websocket, event)
                    elif event["type"] == "ball.control":
                        self.state = apply_control(self.state, event)
                    else:
                        self.state = apply_kick(self.state, event)
                except ProtocolError as error:
                    await websocket.send(error.event())
                # The change goes out with the next tick, to everyone at once.
        finally:
            self.clients.discard(websocket)

    async def _pass_on(self, websocket: ServerConnection, event: dict[str, Any]) -> None:
        """Check a control here (an error comes back at once), then send it to the ticker."""
        assert self.relay is not None
        from redis.exceptions import RedisError

        # Raises ProtocolError for a bad one, exactly as the ticker would.
        (apply_control if event["type"] == "ball.control" else apply_kick)(self.state, event)
        try:
            await self.relay.control(event)
        except (RedisError, OSError):
            self.redis_ok = False
            raise ProtocolError(
                "unavailable",
                "the ball's ticker is unreachable (Redis is down): your control was not "
                "applied; the server reconnects by itself, try again in a moment",
            ) from None
