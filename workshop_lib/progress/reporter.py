"""The learner's side: each check, hint and solution told to the room's server, never waited on.

When a notebook is joined to a room (``WORKSHOP_SERVER`` and ``WORKSHOP_TOKEN``, as for the
shared chat), every exercise's ``check()``, ``hint()`` and ``solution()`` calls
:func:`report`. What goes out: the lesson, the exercise (``"01.q1"``), what was asked
(check, hint, solution), a check's outcome (``passed``, ``failed``, ``error`` with the
exception's class name only), the attempt's number, the learner's display name and an id.
Never code, answers, messages or outputs. ``WORKSHOP_PROGRESS=off`` sends nothing.

:func:`report` only appends to a bounded queue and wakes a daemon thread, which owns the
connection (its own event loop, not the kernel's). The room down or slow costs a check
nothing: the thread retries with backoff, and what the server has not acknowledged goes out
when it is back. A server that restarted (its ``progress.welcome`` names a new server id)
gets the whole session's events again; the ids make the server drop what it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..clients.backoff import backoff_delays
from ..clients.proxies import proxy_for
from ..notebook.names import display_name
from ..server.handle import bearer
from ..server.room import SERVER_VARIABLE, TOKEN_VARIABLE, SharedServer, SharedServerError

__all__ = [
    "MAX_PENDING",
    "PROGRESS_VARIABLE",
    "Reporter",
    "current",
    "enabled",
    "on_announcement",
    "report",
    "start",
    "take_announcement",
]

PROGRESS_VARIABLE = "WORKSHOP_PROGRESS"
MAX_PENDING = 1000  # events kept for sending; past that the oldest are dropped
ANONYMOUS = "anonymous"  # the name of a learner who gave none
WELCOME_TIMEOUT = 5.0


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether checks report: joined to a room, and not turned off."""
    env = os.environ if environ is None else environ
    off = env.get(PROGRESS_VARIABLE, "").strip().lower() in ("off", "0", "no", "false")
    return not off and bool(env.get(SERVER_VARIABLE, "").strip())


class Reporter:
    """One kernel's sender to the room's ``/progress``: a queue and a daemon thread.

    ``report()`` and ``take_announcement()`` may be called from any thread and never block.
    """

    def __init__(self, server: str, token: str | None, name: str | None = None) -> None:
        self.config = (server, token)
        self.name = name  # None: the learner's display name, read at each event
        self.url = SharedServer(server, token).links.ws("/progress")
        self.token = token
        self._lock = threading.Lock()
        self._history: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)  # this session's
        self._unacked: dict[str, dict[str, Any]] = {}  # id -> event, oldest first
        self._attempts: Counter[str] = Counter()
        self._server_id: str | None = None  # the server's id in its last welcome
        self._announcement: dict[str, Any] | None = None
        self._shown: str | None = None  # id of the announcement printed last
        self.dropped = 0  # events lost to a full queue
        self.acked = 0
        self.connected = threading.Event()  # set while a connection is open (tests wait on it)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name="workshop-progress", daemon=True
        )
        self._thread.start()
        ready.wait(5)

    # -- from the check's thread ---------------------------------------------------------------

    def report(
        self,
        lesson: str,
        exercise: str,
        kind: str,
        outcome: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        """Queue one event and return it; sending happens on the reporter's thread."""
        event: dict[str, Any] = {
            "type": "progress.report",
            "id": uuid.uuid4().hex,
            "name": self.name or display_name(ANONYMOUS),
            "lesson": lesson,
            "exercise": exercise,
            "kind": kind,
        }
        with self._lock:
            if kind == "check":
                self._attempts[exercise] += 1
                event["attempt"] = self._attempts[exercise]
                event["outcome"] = outcome
                if outcome == "error":
                    event["error"] = error
            self._history.append(event)
            self._unacked[event["id"]] = event
            while len(self._unacked) > MAX_PENDING:
                del self._unacked[next(iter(self._unacked))]
                self.dropped += 1
        self._poke()
        return event

    def take_announcement(self) -> str | None:
        """The instructor's announcement, once: None if there is none or it was shown."""
        with self._lock:
            current = self._announcement
            if current is None or current.get("id") == self._shown:
                return None
            self._shown = current.get("id")
            return str(current.get("text", ""))

    @property
    def pending(self) -> int:
        """Events the server has not acknowledged yet."""
        with self._lock:
            return len(self._unacked)

    def stop(self) -> None:
        """End the thread (a new configuration replaces this reporter)."""
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._cancel_all)

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended (interpreter exiting)
                loop.call_soon_threadsafe(wake.set)

    # -- on the reporter's thread ------------------------------------------------------------

    def _main(self, ready: threading.Event) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self._run(ready))

    def _cancel_all(self) -> None:
        for task in asyncio.all_tasks():
            task.cancel()

    async def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        ready.set()
        delays = backoff_delays()
        while not self._stopping:
            try:
                async with connect(
                    self.url,
                    additional_headers=bearer(self.token),
                    open_timeout=5,
                    proxy=proxy_for(self.url),
                    close_timeout=1,
                ) as websocket:
                    await self._session(websocket)
                    delays = backoff_delays()  # a session that ran: start the backoff afresh
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, WebSocketException, ValueError, KeyError):
                pass  # the room is down, restarting or refused us: try again later
            finally:
                self.connected.clear()
            await asyncio.sleep(next(delays))

    async def _session(self, websocket: ClientConnection) -> None:
        name = self.name or display_name(ANONYMOUS)
        await websocket.send(json.dumps({"type": "progress.hello", "name": name}))
        async with asyncio.timeout(WELCOME_TIMEOUT):
            welcome = json.loads(await websocket.recv())
        if welcome.get("type") != "progress.welcome":
            raise ValueError(f"expected progress.welcome, got {welcome.get('type')!r}")
        with self._lock:
            server = welcome.get("server")
            if self._server_id is not None and server != self._server_id:
                # A new server (a restart): it may have lost what the old one acknowledged.
                for event in self._history:
                    self._unacked.setdefault(event["id"], event)
            self._server_id = server
        self._take(welcome.get("announcement"))
        self.connected.set()
        sender = asyncio.create_task(self._send(websocket))
        try:
            async for message in websocket:
                self._receive(message)
        finally:
            sender.cancel()

    async def _send(self, websocket: ClientConnection) -> None:
        assert self._wake is not None
        sent: set[str] = set()  # on this connection: a new one sends what is unacked again
        while True:
            self._wake.clear()
            with self._lock:
                batch = [e for i, e in self._unacked.items() if i not in sent]
            for event in batch:
                await websocket.send(json.dumps(event))
                sent.add(event["id"])
            await self._wake.wait()

    def _receive(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "progress.ack":
            with self._lock:
                if self._unacked.pop(str(event.get("id")), None) is not None:
                    self.acked += 1
        elif event.get("type") == "progress.announcement":
            self._take(event.get("announcement"))

    @property
    def announcement(self) -> str:
        """The instructor's current announcement ("" when there is none)."""
        with self._lock:
            current = self._announcement
        return str(current.get("text") or "") if current is not None else ""

    def _take(self, announcement: object) -> None:
        """Keep the room's current announcement, and tell the widgets when it changed."""
        with self._lock:
            before = self._announcement
            self._announcement = announcement if isinstance(announcement, dict) else None
        if self._announcement != before:
            text = self.announcement
            for listener in list(_listeners):
                # A widget that failed to draw must not end the reporter.
                with contextlib.suppress(Exception):
                    listener(text)


_current: Reporter | None = None
_current_lock = threading.Lock()
_listeners: list[Callable[[str], None]] = []


def on_announcement(listener: Callable[[str], None]) -> None:
    """Call ``listener(text)`` on the reporter's thread each time the instructor's
    announcement changes ("" when it is taken down). The course's widgets show it so."""
    _listeners.append(listener)


def current() -> Reporter | None:
    """This kernel's reporter for the room in the environment (started on first use), or
    None when not joined or turned off. A changed ``WORKSHOP_SERVER``/``WORKSHOP_TOKEN``
    starts a new one."""
    global _current
    if not enabled():
        return None
    config = (
        os.environ.get(SERVER_VARIABLE, "").strip(),
        os.environ.get(TOKEN_VARIABLE, "").strip() or None,
    )
    with _current_lock:
        if _current is None or _current.config != config:
            if _current is not None:
                _current.stop()
            try:
                _current = Reporter(*config)
            except SharedServerError:  # a WORKSHOP_SERVER that is no address: 00 says so
                _current = None
        return _current


def start() -> None:
    """Connect now if joined to a room (the learner shows as online before any check)."""
    with contextlib.suppress(Exception):  # reporting must never break a notebook's imports
        current()


def report(
    lesson: str, exercise: str, kind: str, outcome: str | None = None, error: str | None = None
) -> None:
    """Tell the room (if joined) about one check, hint or solution. Never raises, never waits."""
    try:
        reporter = current()
        if reporter is not None:
            reporter.report(lesson, exercise, kind, outcome, error)
    except Exception:  # reporting must never break a learner's check
        pass


def take_announcement() -> str | None:
    """The instructor's newest announcement not yet shown in this kernel, or None."""
    try:
        reporter = current()
        return reporter.take_announcement() if reporter is not None else None
    except Exception:  # the same: a check goes on whatever happens here
        return None
