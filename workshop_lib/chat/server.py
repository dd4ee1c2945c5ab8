"""The chat room on the network: join, send, presence, one order for everyone.

    start_server(lessons=[ChatLesson(rate=2)])    # /chat, at most 2 messages a second each

The handler here takes a connection's events (the rate limit, ``chat.join`` first, then
``chat.send``) and hands them to the room's backend (:mod:`~workshop_lib.chat.rooms`), which
reads the same in both cases:

- one process (the default): :class:`~workshop_lib.chat.rooms.LocalRoom`, the room in
  memory. Every message goes to every member in one and the same order: the events of one
  turn of the loop are written to all members by one synchronous ``fanout()`` call;
- many processes (``ChatLesson(redis="redis://...")``, lesson 06):
  :class:`~workshop_lib.chat.shared_room.SharedRoom`, the room in Redis, one stream that
  each process follows and delivers to its own members.

Either way every chat message matters: a member whose unsent data grows past
``queue_limit`` bytes is disconnected (close code 1008, :mod:`~workshop_lib.chat.members`)
instead of growing the server's memory or holding up the room.

A connection that never joins only holds a slot: it is closed (1008) after ``join_grace``
seconds without a ``chat.join``. A ``chat.join`` may carry ``"since": <last id seen>``: the
welcome then holds exactly the messages after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection

from ..app.rates import TokenBucket
from ..lesson import Handler, Lesson, Page
from ..redis.client import redis_health
from ..wire.backlog import limit_send_buffer
from ..wire.closing import CLOSE_GRACE, close_with
from ..wire.protocol import (
    HEARTBEAT,
    HEARTBEAT_REPLY,
    Close,
    ProtocolError,
    parse_event,
)
from . import events, lookalike
from .events import MAX_ID
from .members import TOO_SLOW, Members
from .model import Room
from .rooms import LocalRoom, RoomBackend

__all__ = ["JOIN_GRACE", "NEVER_JOINED", "RATE_LIMITED", "TOO_SLOW", "ChatLesson"]

logger = logging.getLogger("workshop_lib.chat")

EVENTS = {"chat.join", "chat.send", HEARTBEAT}
RATE_LIMITED = Close.RATE_LIMITED  # 4029: sustained flooding
NEVER_JOINED = Close.POLICY  # 1008: connected, but sent no chat.join in time
JOIN_GRACE = 30.0  # seconds: the browser page and ChatClient join at once; a cell may dawdle


class ChatLesson(Lesson):
    """One room: its members' connections, its rules in :class:`~workshop_lib.chat.model.Room`
    (or, with ``redis``, in Redis).

    ``burst`` and ``rate``: each connection's token bucket (messages, messages a second).
    ``join_grace``: seconds a connection may stay without joining (None: for ever).
    """

    name = "chat"
    pages = (Page("chat", "Chat", "chat.js"),)
    order = 30  # its place among the installed lessons: lower comes first

    def __init__(
        self,
        queue_limit: int = 256 * 1024,
        send_buffer: int = 64 * 1024,
        burst: float = 10,
        rate: float = 5,
        strikes: int = 20,
        join_grace: float | None = JOIN_GRACE,
        redis: str | None = None,
        redis_prefix: str = "workshop:chat",
        alive_for: float = 3.0,
    ) -> None:
        self.room = Room()  # the room's rules, when it lives in this process
        self.members = Members(queue_limit)
        self.send_buffer = send_buffer  # SO_SNDBUF for each /chat socket
        self.burst, self.rate = burst, rate  # each connection's token bucket
        self.strikes = strikes  # refusals before closing with 4029...
        self.strikes_per_second = 1.0  # ...given back at this pace (tests set 0: no refill)
        # Seconds a flooder gets to read its 4029 event and close first (closing.py).
        self.close_grace = CLOSE_GRACE
        self.join_grace = join_grace
        self.never_joined = 0  # connections closed for not joining in time
        self.redis_url, self.redis_prefix, self.alive_for = redis, redis_prefix, alive_for
        self.backend: RoomBackend
        if redis is None:
            self.backend = LocalRoom(self.room, self.members)
        else:
            from .shared_room import SharedRoom  # only a server with Redis needs redis-py

            self.backend = SharedRoom(self.members, redis, redis_prefix, alive_for)

    @property
    def queue_limit(self) -> int:
        """Unsent bytes before a member counts as too slow (read at each write)."""
        return self.members.queue_limit

    @queue_limit.setter
    def queue_limit(self, value: int) -> None:
        self.members.queue_limit = value

    @property
    def redis_ok(self) -> bool | None:
        """None: no Redis; else whether it answers."""
        return self.backend.healthy

    @property
    def last_id(self) -> int:
        """The newest event this process delivered (with Redis, ids count every event)."""
        return self.backend.last_id

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/chat": self.handler}

    def stats(self) -> dict[str, object]:
        return {
            "members": len(self.members),
            "messages": self.last_id,
            "never_joined": self.never_joined,
            **redis_health(self.redis_ok),
        }

    def health(self) -> dict[str, str]:
        return redis_health(self.redis_ok)

    async def start(self) -> None:
        """Open the room (with Redis: follow its stream, keep this process's presence)."""
        # The look-alike classes take half a second to build: in a thread, not in a join.
        self._warming = asyncio.get_running_loop().run_in_executor(None, lookalike.load)
        self.members.tasks = self.context
        await self.backend.start(self.context)

    async def stop(self) -> None:
        """Close the room (with Redis: leave it cleanly); let dropped members' closes end."""
        await self.backend.stop()
        await self.members.stop()

    # -- the handler ----------------------------------------------------------------------------

    async def handler(self, websocket: ServerConnection) -> None:
        """Take ``chat.join`` first, then ``chat.send``; answer bad events with ``error``."""
        limit_send_buffer(websocket, self.send_buffer)
        bucket = TokenBucket(self.burst, self.rate)
        # Refusals have a bucket of their own (``strikes`` deep, refilling one a second), so
        # a client that keeps sending well over the limit runs it dry and is closed with
        # 4029, however it spaces its messages; an occasional burst is only refused.
        patience = TokenBucket(self.strikes, self.strikes_per_second)
        name: str | None = None
        try:
            # Until it joins, a connection only holds a slot of the server's limits.
            async with asyncio.timeout(self.join_grace) as deadline:
                async for message in websocket:
                    now = time.monotonic()
                    if not bucket.take(now):
                        if not patience.take(now):
                            self.backend.flush()  # the room's last events before the close
                            # Out of the room before the event: nothing may follow it while
                            # the flooder is given time to read it and close (the grace).
                            await self._take_out(name, websocket)
                            name = None
                            await close_with(
                                websocket,
                                RATE_LIMITED,
                                "rate limited: too many messages",
                                message=f"rate limited: far over {self.rate:g} messages a "
                                "second for too long, so the server closed this connection; "
                                "wait a little, then join again and send less often",
                                grace=self.close_grace,
                            )
                            break
                        await self._answer(websocket, events.rate_limited(self.rate, self.burst))
                        continue
                    try:
                        event = parse_event(message, EVENTS)
                        if event["type"] == HEARTBEAT:
                            await self._answer(websocket, HEARTBEAT_REPLY)
                        elif event["type"] == "chat.join":
                            name = await self._join(websocket, name, event)
                            deadline.reschedule(None)  # a member stays as long as it likes
                        elif name is None:
                            raise events.join_first()
                        else:
                            await self.backend.post(name, event.get("text"))
                    except ProtocolError as error:
                        await self._answer(websocket, error.event())
        except TimeoutError:  # only before joining: joining lifted the deadline
            self.never_joined += 1
            await close_with(
                websocket,
                NEVER_JOINED,
                f'send {{"type": "chat.join", ...}} within {self.join_grace:g} s',
                name="join_timeout",
                message=f'never joined: send {{"type": "chat.join", "name": ...}} within '
                f"{self.join_grace:g} s of connecting",
            )
        finally:
            await self._take_out(name, websocket)

    async def _take_out(self, name: str | None, websocket: ServerConnection) -> None:
        """Take ``websocket`` out of the room, if it is the member ``name``; said to the room."""
        if name is not None and self.members.get(name) is websocket:
            await self.backend.leave(name)

    async def _answer(self, websocket: ServerConnection, text: str) -> None:
        """A reply to one member alone, after what the room was told before it: a member
        that floods sees its last accepted message before the first ``rate_limited``."""
        self.backend.flush()
        await websocket.send(text)

    async def _join(
        self, websocket: ServerConnection, name: str | None, event: dict[str, Any]
    ) -> str:
        if name is not None:
            raise events.already_joined(name)
        since = event.get("since")
        if since is not None and (
            isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_ID
        ):
            raise events.invalid_since()
        if event.get("room") not in (None, self.backend.instance):
            since = None  # ids of another room (a restarted server): send the whole history
        name = await self.backend.join(websocket, event.get("name"), since, event.get("resume"))
        self.members.log_join(name)
        return name
