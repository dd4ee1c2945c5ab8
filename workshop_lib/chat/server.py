"""The chat room on the network: join, send, presence, one order for everyone.

    start_server(lessons=[ChatLesson(rate=2)])    # /chat, at most 2 messages a second each

Every message goes to every member in one and the same order. That is easy to keep on one
event loop: each event is written to all members by one synchronous ``fanout()`` call
(``websockets.broadcast()``, framing the event once for everyone), so nothing can interleave
between two members' copies.

Unlike the ball's states, every chat message matters: a member is never skipped. A member
whose unsent data grows past ``queue_limit`` bytes cannot keep up, and is disconnected
(close code 1008) instead of growing the server's memory or holding up the room.

A connection that never joins only holds a slot: it is closed (1008) after ``join_grace``
seconds without a ``chat.join``.
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
from ..lesson import Handler, Lesson, Page
from ..logs import Tally
from ..protocol import (
    HEARTBEAT,
    HEARTBEAT_REPLY,
    Close,
    ProtocolError,
    encode,
    error_event,
    parse_event,
)
from .model import Room, TokenBucket

__all__ = ["JOIN_GRACE", "NEVER_JOINED", "RATE_LIMITED", "TOO_SLOW", "ChatLesson"]

logger = logging.getLogger("workshop_lib.chat")

EVENTS = {"chat.join", "chat.send", HEARTBEAT}
RATE_LIMITED = Close.RATE_LIMITED  # 4029: sustained flooding
TOO_SLOW = Close.POLICY  # 1008: the member could not keep up
NEVER_JOINED = Close.POLICY  # 1008: connected, but sent no chat.join in time
JOIN_GRACE = 30.0  # seconds: the browser page and ChatClient join at once; a cell may dawdle


class ChatLesson(Lesson):
    """One room: its members' connections, the rules in :class:`~workshop_lib.chat.model.Room`.

    ``burst`` and ``rate``: each connection's token bucket (messages, messages a second).
    ``join_grace``: seconds a connection may stay without joining (None: for ever).
    """

    name = "chat"
    pages = (Page("chat", "Chat", "chat.js"),)

    def __init__(
        self,
        queue_limit: int = 256 * 1024,
        send_buffer: int = 64 * 1024,
        burst: float = 10,
        rate: float = 5,
        strikes: int = 20,
        join_grace: float | None = JOIN_GRACE,
    ) -> None:
        self.room = Room()
        self.members: dict[str, ServerConnection] = {}
        self.queue_limit = queue_limit  # unsent bytes before a member counts as too slow
        self.send_buffer = send_buffer  # SO_SNDBUF for each /chat socket
        self.burst, self.rate = burst, rate  # each connection's token bucket
        self.strikes = strikes  # refusals (refilling 1/s) before closing with 4029
        self.join_grace = join_grace
        self.never_joined = 0  # connections closed for not joining in time
        # Joins and leaves come in floods when a room (re)connects: a line each for the
        # first few in 10 s, then a count.
        self._presence = Tally(logger, "chat joins and leaves", burst=10)
        # Closes of members that were too slow, kept until done: the loop holds only weak
        # references to tasks, and one that is collected mid-way never sends its close.
        self._closing: set[asyncio.Task[None]] = set()

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/chat": self.handler}

    def stats(self) -> dict[str, object]:
        history = self.room.history
        return {
            "members": len(self.members),
            "messages": history[-1]["id"] if history else 0,  # ids count every message
            "never_joined": self.never_joined,
        }

    async def stop(self) -> None:
        """Let the closes of dropped members finish."""
        self._presence.flush()
        if self._closing:
            with contextlib.suppress(Exception):
                await asyncio.wait(self._closing, timeout=2)

    # -- the handler ----------------------------------------------------------------------------

    async def handler(self, websocket: ServerConnection) -> None:
        """Take ``chat.join`` first, then ``chat.send``; answer bad events with ``error``."""
        limit_send_buffer(websocket, self.send_buffer)
        bucket = TokenBucket(self.burst, self.rate)
        # Refusals have a bucket of their own (``strikes`` deep, refilling one a second), so
        # a client that keeps sending well over the limit runs it dry and is closed with
        # 4029, however it spaces its messages; an occasional burst is only refused.
        patience = TokenBucket(self.strikes, 1.0)
        name: str | None = None
        try:
            # Until it joins, a connection only holds a slot of the server's limits.
            async with asyncio.timeout(self.join_grace) as deadline:
                async for message in websocket:
                    now = time.monotonic()
                    if not bucket.take(now):
                        if not patience.take(now):
                            await websocket.close(RATE_LIMITED, "rate limited: too many messages")
                            break
                        await websocket.send(
                            error_event(
                                "rate_limited",
                                f"slow down: at most {self.rate:g} messages a second "
                                f"(bursts of {self.burst:g}); this one was dropped",
                            )
                        )
                        continue
                    try:
                        event = parse_event(message, EVENTS)
                        if event["type"] == HEARTBEAT:
                            await websocket.send(HEARTBEAT_REPLY)
                        elif event["type"] == "chat.join":
                            name = self._join(websocket, name, event)
                            deadline.reschedule(None)  # a member stays as long as it likes
                        else:
                            self._send(name, event)
                    except ProtocolError as error:
                        await websocket.send(error.event())
        except TimeoutError:  # only before joining: joining lifted the deadline
            self.never_joined += 1
            await websocket.close(
                NEVER_JOINED, f'send {{"type": "chat.join", ...}} within {self.join_grace:g} s'
            )
        finally:
            if name is not None and self.members.get(name) is websocket:
                self._remove(name)

    def _join(self, websocket: ServerConnection, name: str | None, event: dict[str, Any]) -> str:
        if name is not None:
            raise ProtocolError("already_joined", f"you are already in the room as {name!r}")
        name = self.room.join(event.get("name"))
        self.members[name] = websocket
        # Synchronous writes: nothing else can reach this member between the two.
        fanout([websocket], encode(self.room.welcome(name)))
        self._publish({"type": "chat.joined", "name": name})
        self._presence.log(
            logging.INFO, "%s joined the chat (%d here)", name, len(self.members), kind="joined"
        )
        return name

    def _send(self, name: str | None, event: dict[str, Any]) -> None:
        if name is None:
            raise ProtocolError("join_first", 'send {"type": "chat.join", "name": ...} first')
        self._publish(self.room.post(name, event.get("text"), time.time()))

    def _publish(self, event: dict[str, Any]) -> None:
        """Write ``event`` to every member, in one synchronous pass: one order for all."""
        # One pass over the members, for every message: fanout() frames the event once for
        # all of them and returns, unwritten, the members whose unsent data is over the limit.
        behind = fanout(self.members.values(), encode(event), backlog_limit=self.queue_limit).behind
        if not behind:
            return
        names = {websocket: name for name, websocket in self.members.items()}
        for websocket in behind:
            name = names[websocket]
            self._remove(name, announce=False)
            self._presence.log(
                logging.WARNING,
                "%s could not keep up and was disconnected",
                name,
                kind="too slow",
            )
            task = asyncio.get_running_loop().create_task(
                websocket.close(TOO_SLOW, "too slow: could not keep up with the room")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        for websocket in behind:
            self._publish({"type": "chat.left", "name": names[websocket]})

    def _remove(self, name: str, announce: bool = True) -> ServerConnection:
        websocket = self.members.pop(name)
        self.room.leave(name)
        if announce:
            self._publish({"type": "chat.left", "name": name})
            self._presence.log(
                logging.INFO, "%s left the chat (%d here)", name, len(self.members), kind="left"
            )
        return websocket
