"""One ball for many server processes (lesson 06): who ticks, frames out and in, controls.

Exactly one process ticks: the one holding the lease in Redis
(:class:`~workshop_lib.ball.redis_relay.BallRelay`). It sends each frame to its own clients
and publishes it; every other process relays it to its clients, and every process passes
its clients' controls on to the ticker. :class:`SharedBall` runs this process's side of it
for the lesson (:class:`~workshop_lib.ball.server.BallLesson`), whose ticker and clients
stay its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..server.tasks import TaskOwner
from ..wire.protocol import ProtocolError
from .model import BallState, apply_event
from .redis_relay import BallRelay

if TYPE_CHECKING:
    from .server import BallLesson

__all__ = ["PUBLISHERS", "SharedBall"]

logger = logging.getLogger("workshop_lib.ball")

# Frames on their way to Redis at once, each on a connection of the pool: enough that a
# loop that reads the answers a few ticks late still publishes every tick.
PUBLISHERS = 3

# Its tasks' names, in the lesson's context.
LEASE, RELAY, CONTROLS, PUBLISH = "ball-lease", "ball-relay", "ball-controls", "ball-publish"


class SharedBall:
    """This process's part in the ball shared through Redis at ``url`` (keys under
    ``prefix``); ``lease``: seconds before another process ticks when the ticker died.
    Its tasks belong to the lesson's context (``ball.context``)."""

    def __init__(self, ball: BallLesson, url: str, prefix: str, lease: float) -> None:
        self.ball = ball
        self.url, self.prefix, self.lease = url, prefix, lease
        self.relay: BallRelay | None = None
        self.healthy = False  # whether Redis answers
        self.leading = False  # this process holds the lease: its ticker runs
        self.frames_unpublished = 0  # frames replaced by a newer one before Redis took them
        self.tasks: TaskOwner = ball.context
        self._unsent: tuple[str, BallState] | None = None  # the frame waiting behind them

    def _relay(self) -> BallRelay:
        if self.relay is None:
            raise RuntimeError("the shared ball is not started")
        return self.relay

    async def start(self) -> None:
        """Follow the ticker's frames; take the lease when it is free."""
        self.relay = BallRelay(self.url, prefix=self.prefix, lease=self.lease)
        self.healthy = False
        self.tasks = self.ball.context  # this run's
        self.tasks.spawn(self._lead_forever(), name=LEASE)
        self.tasks.spawn(self._relay_forever(), name=RELAY)

    async def stop(self) -> None:
        """Stop (ticking too, if this process ticks), and give the lease up so that another
        process ticks now."""
        tasks = self.tasks
        await tasks.cancel(tasks.named(LEASE) + tasks.named(RELAY) + tasks.named(CONTROLS))
        await self._stop_ticking()
        if self.relay is not None:
            if self.leading:
                with contextlib.suppress(Exception):  # Redis may be gone: the lease expires
                    await self.relay.resign()
            await self.relay.close()
            self.relay = None
        self.leading = False

    async def _stop_ticking(self) -> None:
        await self.ball.ticker.stop()
        self._unsent = None
        await self.tasks.cancel(self.tasks.named(PUBLISH))  # redis-py may swallow one cancel

    # -- the ticker's side ------------------------------------------------------------------

    def publish(self, frame: str, state: BallState) -> None:
        """The ticker's frame to the other processes, without waiting for Redis.

        A slow or stalled Redis must not hold up this process's clients or the ticker's
        schedule. A few frames are on their way at once (a busy loop reads Redis's answers
        late: one at a time lost 5 % of the frames at 1,000 clients), and one waits behind
        them; a newer frame replaces the waiting one (only the latest matters).
        """
        if self._unsent is not None:
            self.frames_unpublished += 1
        self._unsent = (frame, state)
        if len(self.tasks.named(PUBLISH)) < PUBLISHERS:
            self.tasks.spawn(self._publish_waiting(), name=PUBLISH)

    async def _publish_waiting(self) -> None:
        """Publish the waiting frame, and the one that waits after it, until none waits."""
        relay = self._relay()
        while self._unsent is not None:
            frame, state = self._unsent
            self._unsent = None
            with contextlib.suppress(RedisError, OSError):  # the lease loop notices
                await relay.publish(frame, state)

    async def _lead_forever(self) -> None:
        """Hold (or wait for) the ticker's lease, a few times per lease: tick while held."""
        relay = self._relay()
        controls: asyncio.Task[None] | None = None
        while True:
            try:
                await relay.connect()
                leading = await relay.lead()
                self.healthy = True
            except (RedisError, OSError):
                leading, self.healthy = False, False
            if leading and not self.leading:
                with contextlib.suppress(Exception):
                    self.ball.state = await relay.load() or self.ball.state
                logger.info("this process ticks the ball now (tick %d)", self.ball.state.tick)
                self.ball.ticker.start()
                controls = self.tasks.spawn(self._apply_controls(), name=CONTROLS)
            elif not leading and self.leading:
                await self._stop_ticking()
                if controls is not None:
                    # Not one more pop: a control taken now would be applied to a ball that
                    # no longer ticks here, and lost (redis-py may swallow one cancel).
                    await self.tasks.cancel([controls])
                    controls = None
            self.leading = leading
            await asyncio.sleep(self.lease / 4)

    async def _apply_controls(self) -> None:
        """Controls from clients on every process, for as long as this one ticks, through
        Redis going away and coming back (_lead_forever cancels it)."""
        relay = self._relay()
        while True:
            try:
                async for event in relay.controls():
                    with contextlib.suppress(ProtocolError):  # checked where it came in
                        self.ball.apply(event)
            except (RedisError, OSError):
                await asyncio.sleep(self.lease / 4)

    # -- every other process's side ---------------------------------------------------------

    async def _relay_forever(self) -> None:
        """Every process but the ticker's: its frames to this process's clients, conflated."""
        relay = self._relay()
        while True:
            try:
                await relay.connect()
                async for frame in relay.frames():
                    if self.leading:  # the ticker sent it to our clients already
                        continue
                    self._show(frame)
            except (RedisError, OSError):
                self.healthy = False
                await asyncio.sleep(self.lease / 4)  # Redis is away: try again shortly

    def _show(self, frame: str) -> None:
        event = json.loads(frame)
        tick, ball = event.get("tick"), self.ball
        if isinstance(tick, int) and 0 < ball.state.tick - tick < 2 * ball.rate:
            return  # overtaken by a newer frame (published on another connection)
        state = None
        with contextlib.suppress(TypeError, ValueError):
            state = BallState(**{k: event[k] for k in BallState.__dataclass_fields__})
        ball.show(frame, state)

    async def pass_on(self, event: dict[str, Any]) -> None:
        """Check a control here (an error comes back at once), then send it to the ticker,
        wherever it ticks."""
        apply_event(self.ball.state, event)  # a ProtocolError for a bad one, as the ticker's
        try:
            await self._relay().control(event)
        except (RedisError, OSError):
            self.healthy = False
            raise ProtocolError(
                "unavailable",
                "the ball's ticker is unreachable (Redis is down): your control was not "
                "applied; the server reconnects by itself, try again in a moment",
            ) from None
