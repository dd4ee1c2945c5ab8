"""The chat's members on this process, and writing the room's events to them.

    members = Members(queue_limit=256 * 1024)
    members["ada"] = websocket
    members.send(websocket, welcome)              # to one member, at once
    dropped = members.write(members.values(), *events)   # to many, in one pass

Unlike the ball's states, every chat message matters: a member is never skipped. A member
whose unsent data grows past ``queue_limit`` bytes cannot keep up, and is disconnected
(close code 1008) instead of growing the server's memory or holding up the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection

from ..server.logs import Tally
from ..server.tasks import TaskOwner
from ..wire.closing import close_with
from ..wire.fanout import fanout
from ..wire.protocol import Close, encode

__all__ = ["TOO_SLOW", "Members"]

logger = logging.getLogger("workshop_lib.chat")

TOO_SLOW = Close.POLICY  # 1008: the member could not keep up
CLOSING = "chat-too-slow"  # the name of the task that closes one


class Members(dict[str, ServerConnection]):
    """Name: connection, for the members on this process; and their events, written.

    ``queue_limit``: unsent bytes before a member counts as too slow.
    """

    def __init__(self, queue_limit: int) -> None:
        super().__init__()
        self.queue_limit = queue_limit
        # Joins and leaves come in floods when a room (re)connects: a line each for the
        # first few in 10 s, then a count.
        self.presence = Tally(logger, "chat joins and leaves", burst=10)
        # Closes of members that were too slow, kept until done: the loop holds only weak
        # references to tasks, and one that is collected mid-way never sends its close.
        # Owns the closes of members too slow for the room: the chat sets its context
        # here when it starts, so that its stop ends the closes left.
        self.tasks = TaskOwner("chat members")

    def log_join(self, name: str) -> None:
        self.presence.log(
            logging.INFO, "%s joined the chat (%d here)", name, len(self), kind="joined"
        )

    def remove(self, name: str) -> ServerConnection | None:
        """Take a member out (it left), logged; None if it was not here."""
        websocket = self.pop(name, None)
        self.presence.log(logging.INFO, "%s left the chat (%d here)", name, len(self), kind="left")
        return websocket

    def send(self, websocket: ServerConnection, event: dict[str, Any]) -> None:
        """Write ``event`` to one member now. Synchronous: two calls in a row reach it with
        nothing in between (a welcome, then what came while it was put together)."""
        fanout([websocket], encode(event))

    def write(self, websockets: Iterable[ServerConnection], *events: dict[str, Any]) -> list[str]:
        """Write ``events`` to these members in one pass; the names of those too slow for
        it, whose closes have begun (they stay here: their room takes them out)."""
        # fanout() frames the events once for all of them, writes them with one system call
        # per member, and returns, unwritten, the members whose unsent data is over the limit.
        texts = [encode(event) for event in events]
        behind = fanout(websockets, *texts, backlog_limit=self.queue_limit).behind
        if not behind:
            return []
        names = {websocket: name for name, websocket in self.items()}
        dropped = []
        for websocket in behind:
            name = names[websocket]
            self.presence.log(
                logging.WARNING, "%s could not keep up and was disconnected", name, kind="too slow"
            )
            # The event goes in without waiting, behind the backlog that made this member
            # too slow: read up to there, it explains the close; never read, the close
            # times out and cuts the connection, and neither arrives (closing.close_with).
            self.tasks.spawn(
                close_with(
                    websocket,
                    TOO_SLOW,
                    "too slow: could not keep up with the room",
                    name="too_slow",
                    message="too slow: this client did not read the room's messages fast "
                    f"enough ({self.queue_limit // 1024} KiB waited unsent), so the server "
                    "let it go; read continuously, then join again",
                ),
                name=CLOSING,
            )
            dropped.append(name)
        return dropped

    async def stop(self) -> None:
        """Log what the presence tally holds; let the closes of dropped members finish."""
        self.presence.flush()
        if closing := self.tasks.named(CLOSING):
            await asyncio.wait(closing, timeout=2)  # what is left, the lesson's stop cancels
