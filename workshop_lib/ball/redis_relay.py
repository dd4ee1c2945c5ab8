"""One ball for many server processes, through Redis: one ticker, frames to every process.

Exactly one process ticks: the one holding the ticker's **lease**, a Redis key that expires
unless its holder renews it (``lead()``, a few times a second). When that process dies its
lease runs out, and another process's next ``lead()`` takes it over, resuming from the last
state the ticker saved. The ticker publishes each frame on a channel that every process
reads (``frames()``) and passes on to its own clients, with the conflation it always had;
controls from any client on any process go the other way, to the ticker (``controls()``)::

    relay = BallRelay("redis://127.0.0.1:6379/0")
    await relay.connect()
    if await relay.lead(): ...                     # this process ticks (for now)
    await relay.publish(frame, state)              # the ticker, every tick
    async for frame in relay.frames(): ...         # every process
    await relay.control({"type": "ball.kick", ...})

Frames ride on pub/sub: at most once, and only the latest matters; a frame lost to a
reconnect is replaced 1/60 s later by the next. Controls are the other way round: each one
matters, and one sent while the lease changes hands (nobody subscribed yet) would be lost
on pub/sub. So they wait in a list, which the ticker pops (``BLPOP``): the next ticker
applies what came while there was none. The list is short and expires, so a control from
a room that has since emptied is not applied hours later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, fields
from typing import Any

import redis.asyncio as aioredis

from ..redis.client import open_client
from .model import BallState

__all__ = ["CONTROLS_KEPT", "BallRelay"]

CONTROLS_KEPT = 100  # controls waiting for a ticker, at most: the newest

# KEYS: the lease. ARGV: this process, lease ms. 1 if this process holds it now.
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS: the lease. ARGV: this process. Gives the lease up, only if it is ours.
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_FIELDS = {f.name for f in fields(BallState)}


class BallRelay:
    """The ball's ticker lease, its last state, the frames channel and the controls list."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "workshop:ball",
        process: str | None = None,
        lease: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.process = process or secrets.token_hex(4)
        self.lease = lease  # seconds a dead ticker holds the ball before another takes over
        self.redis: aioredis.Redis | None = None
        self._lead: Any = None
        self._resign: Any = None

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def connect(self) -> None:
        """Open the client (and check that Redis answers)."""
        if self.redis is None:
            self.redis = open_client(self.url)
            self._lead = self.redis.register_script(_LEAD)
            self._resign = self.redis.register_script(_RESIGN)
        await self.redis.ping()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    def _client(self) -> aioredis.Redis:
        if self.redis is None:
            raise RuntimeError("call connect() first")
        return self.redis

    # -- the lease -----------------------------------------------------------------------

    async def lead(self) -> bool:
        """Take or renew the ticker's lease: True while this process is the one ticking."""
        return bool(
            await self._lead(
                keys=[self._key("ticker")], args=[self.process, int(self.lease * 1000)]
            )
        )

    async def resign(self) -> None:
        """Give the lease up now (a clean stop), so another process takes over at once."""
        await self._resign(keys=[self._key("ticker")], args=[self.process])

    async def leader(self) -> str | None:
        """Which process ticks now, if any."""
        holder = await self._client().get(self._key("ticker"))
        return holder.decode() if holder else None

    # -- the state and the frames ----------------------------------------------------------

    async def publish(self, frame: str, state: BallState) -> None:
        """The ticker's every tick: the frame to every process, and the state for a successor."""
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.publish(self._key("frames"), frame)
            pipe.set(self._key("state"), json.dumps(asdict(state)))
            await pipe.execute()

    async def load(self) -> BallState | None:
        """The last state a ticker saved, to resume from (None before the first tick)."""
        saved = await self._client().get(self._key("state"))
        if saved is None:
            return None
        values = json.loads(saved)
        return BallState(**{k: v for k, v in values.items() if k in _FIELDS})

    async def frames(self) -> AsyncIterator[str]:
        """Every frame the ticker publishes, from now on (until Redis goes away: raises)."""
        async for message in self._listen("frames"):
            yield message

    async def control(self, event: dict[str, Any]) -> None:
        """Pass a client's ``ball.control`` or ``ball.kick`` on to the ticker (queued for
        the next one, a few leases long, while no process ticks)."""
        key = self._key("controls")
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(event))
            pipe.ltrim(key, -CONTROLS_KEPT, -1)
            pipe.pexpire(key, int(self.lease * 5000))
            await pipe.execute()

    async def controls(self) -> AsyncIterator[dict[str, Any]]:
        """The controls every process passes on, oldest first (for the ticker to apply)."""
        while True:
            popped = await self._client().blpop([self._key("controls")], timeout=1)
            if popped is not None:
                yield json.loads(popped[1])

    async def _listen(self, channel: str) -> AsyncIterator[str]:
        pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._key(channel))
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    data = message["data"]
                    yield data.decode() if isinstance(data, bytes) else data
        finally:
            # Closing must not hang a stopping server (a cancelled read, Redis gone).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await pubsub.aclose()
