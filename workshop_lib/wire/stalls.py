"""A peer that does not read: bounded memory, and its place lost within a bounded time.

websockets answers each ping with a pong (and a close with a close) the moment the frame
is parsed, written to the transport with no backpressure: a client that sends pings and
never reads made the server's write buffer grow by about 9 MB a second. And every write
that waits for room (a handler's ``send()``, a keepalive ping, a close) waits in
``drain()`` with no deadline, so a client that stopped reading kept its connection, and
its slot, for good. :class:`BoundedWrites`, mixed into the server's connection class
(connections.py), adds two things::

    watch = StallWatch(timeout=20.0)     # one per server: seconds a full buffer may last
    class _Tracked(BoundedWrites, ServerConnection): ...   # each sets .stall_watch = watch

1. Backpressure on reading. When what a client sent makes websockets write (its pongs,
   its close replies) while the transport already holds more than the write limit unsent
   (asyncio called ``pause_writing()``), the server stops reading from that client, so
   nothing it sends can make the server write more. Reading resumes when the buffer has
   drained, unless websockets' own flow control (its queue of received messages) still
   wants it paused: the two reasons are kept apart. A handler's own messages are not
   concerned: ``send()`` waits for room, and ``broadcast()`` is the lesson's choice.
2. Deadlines. A close waits for room in the buffer only until websockets' close deadline
   (``close_timeout``), then the TCP connection is aborted; and a peer whose buffer stays
   full for the :class:`StallWatch`'s ``timeout`` is cut, with one log line (floods: a
   count).

Both read websockets internals (the received-message queue's ``pause``/``resume``/
``paused``, the connection's ``close_deadline``, ``paused`` and ``drain()``), which a
release may rename. At import :func:`missing_internals` checks them; if one is missing,
one WARNING is logged and the mixin falls back to asyncio's public protocol API only: the
stall deadline still holds, and instead of pausing reading it cuts a connection whose
own frames push its unsent bytes past :data:`HARD_LIMIT` (:data:`IMPLEMENTATION` says
which is in use).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.messages import Assembler

from ..server.logs import Tally
from .internals import assigned_in, choose

__all__ = [
    "HARD_LIMIT",
    "IMPLEMENTATION",
    "STALL_TIMEOUT",
    "BoundedWrites",
    "StallWatch",
    "missing_internals",
]

logger = logging.getLogger("workshop_lib.wire.stalls")

# A peer that reads nothing for this long is as dead as one that misses a pong (app.py's
# ping_interval); a reading peer drains a 16 KiB buffer in milliseconds.
STALL_TIMEOUT = 20.0

# The fallback's cap on unsent bytes: past it the connection is cut at once.
HARD_LIMIT = 256 * 1024

_cut = Tally(logger, "connections cut for not reading")


def missing_internals() -> list[str]:
    """The websockets internals :class:`BoundedWrites` reads that this websockets lacks."""
    missing: list[str] = []
    # Neither class can be made without a running loop: read the names their code assigns.
    missing += [
        f"Assembler.{name} (set in __init__)"
        for name in ("pause", "resume", "paused")
        if not assigned_in(Assembler, "__init__", name)
    ]
    for name, method in (
        ("close_deadline", "__init__"),
        ("paused", "__init__"),
        ("recv_messages", "connection_made"),
    ):
        if not assigned_in(Connection, method, name):
            missing.append(f"Connection.{name} (set in {method})")
    if not asyncio.iscoroutinefunction(getattr(Connection, "drain", None)):
        missing.append("Connection.drain()")
    return missing


# What the fallback does instead, for its one WARNING.
FALLBACK_DOES = (
    f"a client that does not read is cut once {HARD_LIMIT} bytes wait for it, instead of being "
    "read from no more"
)


def _select(missing: list[str]) -> str:
    """``"backpressure"``, or ``"hard limit"`` (with one WARNING) if internals are missing."""
    return choose(missing, "backpressure", "hard limit", logger, "stalls.py", FALLBACK_DOES)


IMPLEMENTATION = _select(missing_internals())


class StallWatch:
    """The connections whose write buffer is full, and since when; cuts those full for longer
    than ``timeout`` seconds (None: never).

    One timer for all of them, every ``timeout / 4`` seconds (at most 1 s) while any is
    stalled: a timer per connection, cancelled when its buffer drains, would stay in the
    loop's queue for the whole timeout, and a crowd of them pins freed memory that
    memory.Trimmer would otherwise give back.
    """

    def __init__(self, timeout: float | None = STALL_TIMEOUT) -> None:
        self.timeout = timeout
        self._since: dict[BoundedWrites, float] = {}
        self._armed = False

    def stalled(self, connection: BoundedWrites) -> None:
        """``connection``'s buffer is full (call on the loop)."""
        loop = asyncio.get_running_loop()
        self._since.setdefault(connection, loop.time())
        self._arm(loop)

    def drained(self, connection: BoundedWrites) -> None:
        """``connection``'s buffer drained, or it is gone."""
        self._since.pop(connection, None)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._armed and self.timeout is not None and self._since:
            self._armed = True
            loop.call_later(min(1.0, self.timeout / 4), self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._armed = False
        if self.timeout is not None:
            now = loop.time()
            for connection, since in list(self._since.items()):
                if now - since >= self.timeout:
                    del self._since[connection]
                    connection.cut_stalled(self.timeout)
        self._arm(loop)


class BoundedWrites:
    """Mixin for websockets' asyncio ``Connection``: see the module. Put it first in the bases."""

    stall_watch: StallWatch | None = None  # None: a full buffer may last for ever
    implementation: str = IMPLEMENTATION

    transport: asyncio.Transport
    logger: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._writes_stalled = False  # the buffer is over its limit (asyncio said so)
        self._held = False  # reading paused here, until the buffer drains
        if self.implementation == "backpressure":
            # The queue of received messages pauses and resumes reading too; reading
            # resumes only when neither it nor a full write buffer wants it paused.
            assembler = self.recv_messages  # type: ignore[attr-defined]
            assembler.resume = self._resume_for_queue

    def _resume_for_queue(self) -> None:
        if not self._held:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        self._writes_stalled = True
        if self.stall_watch is not None:
            self.stall_watch.stalled(self)

    def resume_writing(self) -> None:
        super().resume_writing()  # type: ignore[misc]
        self._writes_stalled = False
        if self.stall_watch is not None:
            self.stall_watch.drained(self)
        if self._held:
            self._held = False
            if not self.recv_messages.paused:  # type: ignore[attr-defined]
                self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        # What is written while the data is parsed is websockets' own answer to it (a pong
        # for each ping, a close for a close); a handler's messages go out later, from its
        # task, with their own backpressure (send() waits). So only a client whose frames
        # themselves make the server write into a full buffer is held back: one that sends
        # messages and reads its replies late (a learner's broadcast) is not.
        before = self.transport.get_write_buffer_size()
        super().data_received(data)  # type: ignore[misc]
        after = self.transport.get_write_buffer_size()
        if not (self._writes_stalled and after > before) or self.transport.is_closing():
            return
        if self.implementation == "backpressure":
            self._held = True
            self.transport.pause_reading()
        elif after > HARD_LIMIT:
            self._cut(f"{after} bytes waited unsent")

    @property
    def writes_stalled(self) -> bool:
        """The write buffer is over its limit: the peer is not reading what it is sent."""
        return self._writes_stalled

    def cut_stalled(self, seconds: float) -> None:
        """Abort the connection: its peer read nothing for ``seconds``."""
        self._cut(f"it read nothing for {seconds:g} s")

    def _cut(self, why: str) -> None:
        if self.transport.is_closing():
            return
        peer = self.transport.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a client"
        _cut.log(logging.WARNING, "%s cut: %s", where, why, kind="not reading")
        self.transport.abort()

    async def drain(self) -> None:
        # websockets sets close_deadline before the close frame's drain(), then waits for
        # the drain with no deadline; a close must not outlast its deadline.
        deadline = getattr(self, "close_deadline", None)
        if deadline is None:
            await super().drain()  # type: ignore[misc]
            return
        try:
            async with asyncio.timeout_at(deadline):
                await super().drain()  # type: ignore[misc]
        except TimeoutError:
            self._cut("its close did not get out before the close timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stall_watch is not None:
            self.stall_watch.drained(self)
        super().connection_lost(exc)  # type: ignore[misc]
