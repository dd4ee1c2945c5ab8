"""The chat room shared by many server processes through Redis (lesson 06), as ``/chat`` uses it.

The room's state is in Redis (:class:`~workshop_lib.chat.redis_room.RedisRoom`). Every
event, joins and leaves included, takes its id from Redis and goes through one stream that
each process follows with one reader and delivers to its own members; a process never
delivers its own members' messages directly, so every member everywhere sees one order and
one id sequence.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection

from ..server.tasks import TaskOwner
from ..wire.protocol import ProtocolError
from . import events
from .members import Members
from .model import clean_text
from .redis_room import RedisRoom, RoomLost

__all__ = ["SharedRoom"]

logger = logging.getLogger("workshop_lib.chat")

T = TypeVar("T")

FOLLOW, PRESENCE = "chat-follow", "chat-presence"  # its tasks' names


class SharedRoom:
    """The room in Redis at ``url`` (keys under ``prefix``), delivered to ``members``.

    ``alive_for``: seconds this process's members stay in the room after it stops renewing
    its presence (a process that died).
    """

    def __init__(self, members: Members, url: str, prefix: str, alive_for: float) -> None:
        self.members = members
        self.url, self.prefix, self.alive_for = url, prefix, alive_for
        self.store: RedisRoom | None = None
        self.healthy: bool | None = None  # whether Redis answers (None: not started yet)
        self.last_id = 0  # the newest event this process delivered
        # Members who joined but whose welcome is not sent yet: events for them wait here,
        # with the id their welcome's history reaches (None until it is known).
        self._pending: dict[ServerConnection, list[dict[str, Any]]] = {}
        self._seen_upto: dict[ServerConnection, int] = {}
        self._unannounced: list[str] = []  # leaves to post once Redis answers again
        self._secrets: dict[str, str] = {}  # our members' secrets (names taken back)
        self._owner: TaskOwner | None = None  # the lesson's context, while started
        self._stop_keep_alive: Callable[[], None] | None = None

    @property
    def instance(self) -> str:
        return self._store().instance

    def _store(self) -> RedisRoom:
        if self.store is None:
            raise RuntimeError("the room is not started")
        return self.store

    async def start(self, tasks: TaskOwner) -> None:
        """Follow the room's stream, and keep this process's presence alive (two tasks of
        ``tasks``, the lesson's context)."""
        self.store = RedisRoom(self.url, prefix=self.prefix, alive_for=self.alive_for)
        self._stop_keep_alive = self.store.keep_alive()
        self.healthy = False
        self._owner = tasks
        tasks.spawn(self._follow_forever(), name=FOLLOW)
        tasks.spawn(self._heartbeat_forever(), name=PRESENCE)

    async def stop(self) -> None:
        """Leave the room cleanly: this process's members go now, not when it expires."""
        if self._owner is not None:
            # First: no renewal or delivery may follow the goodbye below.
            await self._owner.cancel(self._owner.named(FOLLOW) + self._owner.named(PRESENCE))
            self._owner = None
        if self._stop_keep_alive is not None:
            # Before forget_process(), which must not be undone by a renewal (a short join
            # of the renewing thread, off the loop).
            await asyncio.to_thread(self._stop_keep_alive)
            self._stop_keep_alive = None
        if self.store is not None:
            with contextlib.suppress(Exception):  # Redis may be gone: heartbeats expire
                await self.store.forget_process()
            await self.store.close()
            self.store = None

    async def _call(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await call(*args)`` on Redis, or a ProtocolError the client can read."""
        try:
            return await call(*args)
        except RoomLost:
            raise events.store_lost() from None
        except (RedisError, OSError):
            self.healthy = False
            raise events.store_down() from None

    async def join(
        self, websocket: ServerConnection, wanted: object, since: int | None, resume: object
    ) -> str:
        """Join across processes: a unique name, then a welcome that meets the live stream.

        Events the follower reads while the welcome is being put together wait in
        ``_pending``; afterwards only those newer than the welcome's history go out, so
        nothing is missed and nothing comes twice.
        """
        store = self._store()
        name, secret = await self._call(
            store.join, wanted, resume if isinstance(resume, str) else None
        )
        self._secrets[name] = secret
        self.members[name] = websocket
        self._pending[websocket] = []
        try:
            history, upto = await self._call(store.history, since)
            users = await self._call(store.users)
        except ProtocolError:
            del self.members[name], self._pending[websocket]
            with contextlib.suppress(Exception):
                await store.leave(name)
            raise
        self.members.send(websocket, events.welcome(name, users, history, store.instance, secret))
        self._seen_upto[websocket] = upto
        for queued in self._pending.pop(websocket):
            if queued["id"] > upto:
                self.members.send(websocket, queued)
        await self._call(store.post, events.joined(name))
        return name

    async def post(self, name: str, text: object) -> None:
        text = clean_text(text)  # refused here, before it costs an id
        # Delivered by _follow_forever, to every process's members, this one's too.
        await self._call(self._store().post, events.message(name, text, time.time()))

    async def leave(self, name: str) -> None:
        websocket = self.members.remove(name)
        self._secrets.pop(name, None)
        self._pending.pop(websocket, None)  # type: ignore[arg-type]
        self._seen_upto.pop(websocket, None)  # type: ignore[arg-type]
        try:
            if await self._store().leave(name):
                await self._store().post(events.left(name))
        except Exception:  # Redis is away: say it when it is back (_heartbeat_forever)
            self._unannounced.append(name)

    def flush(self) -> None:
        pass  # every event is written as the follower reads it

    async def _follow_forever(self) -> None:
        """One reader per process: every room event, in the stream's order, to our members."""
        store = self._store()
        placed = False  # whether last_id is where this process follows from
        while True:
            try:
                await store.connect()
                if store.instance_changed:
                    await self._new_room()
                    placed = True  # the new room's stream, from its first event
                elif not placed:
                    # A process starting (with or without a room's past): members get the
                    # past in their welcome's history, the live stream from here on.
                    self.last_id = await store.last_id()
                    placed = True
                self.healthy = True
                async for batch in store.follow_batches(self.last_id):
                    self.last_id = batch[-1]["id"]
                    self._deliver(batch)
            except (RedisError, OSError) as exc:
                if self.healthy:
                    logger.warning("the chat's Redis does not answer (%s); retrying", exc)
                self.healthy = False
                await asyncio.sleep(0.5)
            # follow_batches() only ends when Redis lost the room's data: the loop's next
            # turn starts the new room.

    async def _new_room(self) -> None:
        """Redis lost the room's data: our members are in a new room, from id 1, and each is
        told so by a new welcome with the new ``room`` (as a restarted server does), so that
        no client takes the new ids for the old ones."""
        store = self._store()
        store.instance_changed = False
        self.last_id = 0
        logger.warning(
            "the chat's Redis lost its data: a new room begins for the %d member(s) here",
            len(self.members),
        )
        for name in list(self.members):
            await store.claim(name, self._secrets.get(name, ""))
        users = await store.users()
        for name, websocket in list(self.members.items()):
            if websocket in self._pending:
                continue  # its welcome is being put together, with the room it reads
            self._seen_upto[websocket] = 0
            secret = self._secrets.get(name, "")
            self.members.send(websocket, events.welcome(name, users, [], store.instance, secret))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """One stream read's events (in id order) to our members: to each the ones it has
        not seen, in one write (a member that just joined has seen the first few)."""
        for queue in self._pending.values():
            queue.extend(batch)
        ids = [event["id"] for event in batch]
        starts: dict[int, list[ServerConnection]] = {}  # first unseen event: its members
        for websocket in self.members.values():
            if websocket in self._pending:
                continue
            seen = self._seen_upto.get(websocket, 0)
            start = 0 if seen < ids[0] else bisect.bisect_right(ids, seen)
            if start < len(batch):
                starts.setdefault(start, []).append(websocket)
        for start, members in starts.items():
            # A member too slow for it stays until its handler ends: that leaves it, announced
            # to every process.
            self.members.write(members, *batch[start:])

    async def _heartbeat_forever(self) -> None:
        """Keep this process's members in the room; take a dead process's out, announced."""
        store = self._store()
        while True:
            try:
                await store.connect()
                gone = await store.heartbeat()
                self.healthy = True
                for name in [*self._unannounced, *gone]:
                    await store.post(events.left(name))
                self._unannounced.clear()
                # Taken for dead while alive (Redis was slow, or this process stalled past
                # its expiry), our members were announced as gone: they are back.
                ours = {name: self._secrets.get(name, "") for name in self.members}
                for name in await store.reclaim(ours):
                    await store.post(events.joined(name))
            except (RedisError, OSError):
                self.healthy = False
            except RoomLost:
                pass  # the follower starts the new room (_new_room); posted again next turn
            await asyncio.sleep(self.alive_for / 3)
