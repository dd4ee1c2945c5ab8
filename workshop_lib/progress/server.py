"""The room's side of progress: learners report on ``/progress``, the instructor watches.

* ``/progress`` (the learners' token): a kernel says ``progress.hello`` with its learner's
  name, then sends one ``progress.report`` per check, hint or solution; each is answered
  with ``progress.ack`` (a repeated id too, marked ``duplicate``, and counted once).
  ``progress.welcome`` carries the server's id: a kernel that meets a new one (the room's
  server restarted) sends its events again, and the ids keep them from counting twice.
  Announcements reach these connections as ``progress.announcement``.
* ``/progress/watch`` and ``GET /api/progress`` (the instructor's key only: the learners'
  token gets 403 there, nothing 401): a ``progress.snapshot`` of the whole board, then a
  ``progress.learner`` event whenever a learner's row changes. The instructor sends
  ``progress.announce`` with a line for everyone.
* ``/progress/announcements`` (the learners' token): for browser pages, which show the
  announcement in a banner.

A browser cannot put the key in a header, so the room page offers it as a WebSocket
subprotocol, ``workshop-key.<key>`` (beside ``workshop-progress``, which the server selects):
the same way browsers send Realtime's keys. The log redacts both forms (auth.RedactFilter).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request

from ..app.auth import RedactFilter, tokens_match
from ..lesson import Handler, JsonRoute, Lesson, Post
from ..notebook.names import MAX_NAME
from ..redis.client import redis_health
from ..server.logs import WEBSOCKETS_LOGGER_NAME
from ..wire.protocol import HEARTBEAT, HEARTBEAT_REPLY, ProtocolError, encode, parse_event
from .model import Board, clean_name, course_exercises, parse_report

if TYPE_CHECKING:
    from .shared import SharedProgress

__all__ = ["KEY_PROTOCOL", "MAX_ANNOUNCEMENT", "SUBPROTOCOL", "ProgressLesson"]

SUBPROTOCOL = "workshop-progress"
KEY_PROTOCOL = "workshop-key."  # + the instructor's key: how the room page sends it
MAX_ANNOUNCEMENT = 200  # characters: one line on a banner

_LEARNER_EVENTS = {"progress.hello", "progress.report", HEARTBEAT}
_WATCH_EVENTS = {"progress.announce", HEARTBEAT}

logger = logging.getLogger("workshop_lib.progress")


def _checks_sources() -> list[str]:
    """The source of every checks module of the course (for the grid's columns)."""
    folder = files("workshop_lib.checks")
    return [
        entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".py") and not entry.name.startswith("_")
    ]


class ProgressLesson(Lesson):
    """Learners' checks in, the instructor's live view and announcements out.

    ``instructor_key``: what opens the instructor's view (``serve`` makes one when it has a
    token); without one the view stays shut. ``exercises``: the grid's columns (default:
    every exercise of the course); exercises reported that are not listed are added.
    """

    name = "progress"
    subprotocols = (SUBPROTOCOL,)
    keyed_routes = frozenset({"/progress/watch", "/api/progress"})

    def __init__(
        self,
        instructor_key: str | None = None,
        exercises: list[str] | None = None,
        redis: str | None = None,
        redis_key: str = "progress",
    ) -> None:
        if instructor_key is not None and not instructor_key.strip():
            raise ValueError("an instructor key cannot be empty")
        self.key = instructor_key
        self.board = Board(course_exercises(_checks_sources()) if exercises is None else exercises)
        self.server_id = secrets.token_hex(8)  # new at every start: kernels then resend
        self.announcement: dict[str, Any] | None = None
        self.learner_sockets: set[ServerConnection] = set()
        self.watchers: set[ServerConnection] = set()
        self.listeners: set[ServerConnection] = set()  # browser pages, for announcements
        self._redact = RedactFilter(instructor_key, label="[instructor key]")
        # With Redis, every room process shares one board (shared.py).
        self.redis = redis
        self.redis_key = redis_key
        self.shared: SharedProgress | None = None

    # -- what the core asks -------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {
            "/progress": self.learner,
            "/progress/watch": self.watch,
            "/progress/announcements": self.announcements,
        }

    def http_routes(self) -> Mapping[str, JsonRoute | Post]:
        return {"/api/progress": self.api}

    def credential(self, request: Request) -> str | None:
        """The key a browser offers as the subprotocol ``workshop-key.<key>``."""
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        for word in offered.split(","):
            word = word.strip()
            if word.startswith(KEY_PROTOCOL) and len(word) > len(KEY_PROTOCOL):
                return word[len(KEY_PROTOCOL) :]
        return None

    def owns_key(self, key: str) -> bool:
        return self.key is not None and tokens_match(key, self.key)

    def check_key(self, key: str) -> str | None:
        return None  # owns_key() said it is the key: nothing expires

    async def start(self) -> None:
        # The key must never reach a log line, whichever logger quotes a header.
        logging.getLogger(WEBSOCKETS_LOGGER_NAME).addFilter(self._redact)
        if self.redis is not None:
            from .shared import SharedProgress  # redis-py, only for a room with Redis

            self.shared = SharedProgress(
                self.redis,
                on_event=self._apply_shared,
                on_presence=self._merge_presence,
                local_online=lambda: self.board.online,
                tasks=self.context,
                key=self.redis_key,
            )
            await self.shared.start()

    async def stop(self) -> None:
        logging.getLogger(WEBSOCKETS_LOGGER_NAME).removeFilter(self._redact)
        if self.shared is not None:
            await self.shared.stop()
            self.shared = None

    def stats(self) -> dict[str, object]:
        return {**self.board.counts(), **redis_health(self._redis_ok())}

    def health(self) -> dict[str, str]:
        return redis_health(self._redis_ok())

    def _redis_ok(self) -> bool | None:
        return None if self.shared is None else self.shared.ok is not False

    # -- shared through Redis -----------------------------------------------------------------

    def _apply_shared(self, event: dict[str, Any]) -> None:
        """An event from the room's stream (this process's own too: ids make it count once)."""
        if event.get("type") == "progress.report":
            report = parse_report(event)
            if self.board.record(report, float(event.get("ts") or time.time())):
                self._changed(report.name)
        elif event.get("type") == "progress.announcement":
            announcement = event.get("announcement")
            announcement = announcement if isinstance(announcement, dict) else None
            if announcement != self.announcement:
                self._show(announcement)

    def _merge_presence(self, remote: Counter[str]) -> None:
        for name in self.board.set_remote(remote, time.time()):
            self._changed(name)

    def _share(self, event: dict[str, Any]) -> None:
        """Append ``event`` to the room's stream in the background (announcements)."""
        if self.shared is not None:
            self.context.spawn(self.shared.append(event), name="progress-append")

    # -- HTTP -----------------------------------------------------------------------------------

    def api(self) -> dict[str, Any]:
        """``GET /api/progress`` (the core let only the instructor's key through)."""
        return {**self.board.snapshot(time.time()), "announcement": self.announcement}

    # -- learners ---------------------------------------------------------------------------------

    async def learner(self, websocket: ServerConnection) -> None:
        """A kernel's connection: hello, then reports, each acknowledged."""
        name: str | None = None
        self.learner_sockets.add(websocket)
        try:
            async for message in websocket:
                try:
                    event = parse_event(message, _LEARNER_EVENTS)
                    if event["type"] == HEARTBEAT:
                        await websocket.send(HEARTBEAT_REPLY)
                    elif event["type"] == "progress.hello":
                        said = clean_name(event.get("name"))
                        now = time.time()
                        self.board.connected(said, now)  # raises if the board is full
                        if name is not None:
                            self.board.disconnected(name, now)
                        name = said
                        await websocket.send(
                            encode(
                                {
                                    "type": "progress.welcome",
                                    "server": self.server_id,
                                    "announcement": self.announcement,
                                }
                            )
                        )
                        self._changed(name)
                    else:
                        report = parse_report(event)
                        now = time.time()
                        if self.shared is not None:
                            # In Redis before the ack: a restart loses nothing acknowledged.
                            await self.shared.append(
                                {"type": "progress.report", "ts": now, **asdict(report)}
                            )
                        new = self.board.record(report, now)
                        await websocket.send(
                            encode({"type": "progress.ack", "id": report.id, "duplicate": not new})
                        )
                        if new:
                            self._changed(report.name)
                except ProtocolError as error:
                    await websocket.send(error.event())
        finally:
            self.learner_sockets.discard(websocket)
            if name is not None:
                self.board.disconnected(name, time.time())
                self._changed(name)

    # -- the instructor ---------------------------------------------------------------------------

    async def watch(self, websocket: ServerConnection) -> None:
        """The instructor's live view (the core let only the key through)."""
        await websocket.send(encode({"type": "progress.snapshot", **self.api()}))
        self.watchers.add(websocket)
        try:
            async for message in websocket:
                try:
                    event = parse_event(message, _WATCH_EVENTS)
                    if event["type"] == HEARTBEAT:
                        await websocket.send(HEARTBEAT_REPLY)
                    else:
                        self.announce(event.get("text"))
                except ProtocolError as error:
                    await websocket.send(error.event())
        finally:
            self.watchers.discard(websocket)

    def announce(self, text: object) -> dict[str, Any] | None:
        """Tell every learner ``text`` (an empty one takes the announcement down)."""
        if not isinstance(text, str) or len(text) > MAX_ANNOUNCEMENT:
            raise ProtocolError("bad_value", f"text must be at most {MAX_ANNOUNCEMENT} characters")
        text = " ".join(text.split())  # one line, whatever was typed
        if not text.isprintable():
            raise ProtocolError("bad_value", "text must have no control characters")
        announcement = (
            {"id": secrets.token_hex(6), "text": text, "ts": time.time()} if text else None
        )
        self._show(announcement)
        self._share({"type": "progress.announcement", "announcement": announcement})
        logger.info("announcement: %s", text[: MAX_NAME * 2] if text else "(taken down)")
        return announcement

    def _show(self, announcement: dict[str, Any] | None) -> None:
        """Make ``announcement`` the current one and send it to every connection here."""
        self.announcement = announcement
        event = encode({"type": "progress.announcement", "announcement": announcement})
        broadcast(self.learner_sockets | self.listeners | self.watchers, event)

    async def announcements(self, websocket: ServerConnection) -> None:
        """A browser page's line to the announcements: the current one, then each new one."""
        await websocket.send(
            encode({"type": "progress.announcement", "announcement": self.announcement})
        )
        self.listeners.add(websocket)
        try:
            async for message in websocket:
                try:
                    parse_event(message, {HEARTBEAT})
                    await websocket.send(HEARTBEAT_REPLY)
                except ProtocolError as error:
                    await websocket.send(error.event())
        finally:
            self.listeners.discard(websocket)

    def _changed(self, name: str) -> None:
        """Send ``name``'s row to every watcher (the whole board if a column is new)."""
        if not self.watchers:
            return
        now = time.time()
        event = {
            "type": "progress.learner",
            "ts": now,
            "exercises": self.board.exercises,
            "passed": self.board.passed(),
            "learner": self.board.learner(name, now),
        }
        broadcast(self.watchers, encode(event))
