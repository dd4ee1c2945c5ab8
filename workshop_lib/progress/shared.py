"""Several room processes, one board: progress shared through Redis (``serve --redis``).

Every accepted report and every announcement is appended to one Redis Stream; each process
follows the stream from its start and applies what it reads to its own board (ids make a
report count once, whichever process took it and however often it was read). So a process
that restarts reads the whole session back, and a learner on one process shows on the page
of another. Who is online: each process writes its connected learners to a hash that expires
unless renewed, and reads the others'::

    shared = SharedProgress(
        "redis://127.0.0.1:6379/0", on_event=apply, on_presence=merge, local_online=mine,
        tasks=lesson.context,                   # who owns its two tasks
    )
    await shared.start()
    await shared.append({"type": "progress.report", ...})   # False: Redis is away
    await shared.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from ..redis.client import open_client
from ..server.tasks import TaskOwner

__all__ = ["PRESENCE_EVERY", "SharedProgress"]

FOLLOW, PRESENCE = "progress-follow", "progress-presence"  # its tasks' names
PRESENCE_EVERY = 2.0  # seconds between presence writes; a process's hash expires after 3
MAX_EVENTS = 500_000  # the stream's length (approximately): a long day of a big room

logger = logging.getLogger("workshop_lib.progress")


class SharedProgress:
    """The Redis side of one room process. Use it on the server's loop.

    ``tasks``: the owner of its tasks (the lesson's context), which cancels what
    :meth:`stop` leaves.
    """

    def __init__(
        self,
        url: str,
        on_event: Callable[[dict[str, Any]], None],
        on_presence: Callable[[Counter[str]], None],
        local_online: Callable[[], Counter[str]],
        tasks: TaskOwner,
        key: str = "progress",
    ) -> None:
        self.url = url
        self.stream = f"{key}:events"
        self.presence = f"{key}:online:"
        self.process = secrets.token_hex(6)
        self.on_event = on_event
        self.on_presence = on_presence
        self.local_online = local_online
        self.ok: bool | None = None  # None until Redis first answered or failed
        self._client: Any = None
        self.tasks = tasks

    async def start(self) -> None:
        self._client = open_client(self.url)
        self.tasks.spawn(self._follow(), name=FOLLOW)
        self.tasks.spawn(self._presence_forever(), name=PRESENCE)

    async def stop(self) -> None:
        # First: no presence write may follow the delete below.
        await self.tasks.cancel(self.tasks.named(FOLLOW) + self.tasks.named(PRESENCE))
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.delete(self.presence + self.process)
            await self._client.aclose()
            self._client = None

    async def append(self, event: dict[str, Any]) -> bool:
        """Add ``event`` to the room's stream; False if Redis is away (said in the log)."""
        try:
            await self._client.xadd(
                self.stream, {"event": json.dumps(event)}, maxlen=MAX_EVENTS, approximate=True
            )
        except (RedisError, OSError) as exc:
            if self.ok is not False:
                logger.warning("Redis at %s is away (%s): progress kept in memory", self.url, exc)
            self.ok = False
            return False
        self.ok = True
        return True

    async def _follow(self) -> None:
        last = "0"  # from the start: a process that restarts reads the session back
        while True:
            try:
                reply = await self._client.xread({self.stream: last}, count=1000, block=1000)
            except (RedisError, OSError):
                self.ok = False
                await asyncio.sleep(1)
                continue
            self.ok = True
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    raw = fields.get(b"event", fields.get("event"))
                    try:
                        event = json.loads(raw)
                    except (TypeError, ValueError):
                        continue
                    try:
                        self.on_event(event)
                    except Exception:  # one bad entry must not stop the room's reader
                        logger.exception("progress: could not apply a shared event")

    async def _presence_forever(self) -> None:
        while True:
            try:
                mine = self.presence + self.process
                online = self.local_online()
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.delete(mine)
                    if online:
                        pipe.hset(mine, mapping={name: n for name, n in online.items()})
                        pipe.expire(mine, int(PRESENCE_EVERY * 3) + 1)
                    await pipe.execute()
                others: Counter[str] = Counter()
                async for key in self._client.scan_iter(match=self.presence + "*", count=100):
                    name = key.decode() if isinstance(key, bytes) else key
                    if name == mine:
                        continue
                    for who, n in (await self._client.hgetall(key)).items():
                        who = who.decode() if isinstance(who, bytes) else who
                        others[who] += int(n)
                self.on_presence(others)
            except (RedisError, OSError, ValueError):
                self.on_presence(Counter())  # unknown: show only this process's own
            await asyncio.sleep(PRESENCE_EVERY)
