"""The server's log: kept in memory for the notebook's log widget, never printed.

A server thread that printed would land its lines in whichever cell happens to run. So
`workshop_lib` only logs, and this module keeps the recent records, so that a log widget
opened late still shows how the server started::

    from workshop_lib.server.logs import recent_lines, subscribe
    recent_lines()                 # ['04:12:01 INFO server 'workshop' listening on ...', ...]
    unsubscribe = subscribe(print_line_somewhere)

A room's server sees floods (a hundred laptops reconnecting at once, a script opening
connections in a loop), and a line per event would scroll the instructor's terminal away.
So events that can flood go through a :class:`Tally`: the first few of each ``window`` get a
line each, the rest one summary line at the window's end::

    refused = Tally(logger, "connections refused")
    refused.log(logging.WARNING, "%s refused: %s", peer, why, kind="per-address limit")
    # ... 09:12:10 WARNING 412 connections refused in the last 10 s (5 shown above;
    #     per-address limit 400, wrong token 12)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = [
    "LOGGER_NAME",
    "WEBSOCKETS_LOGGER_NAME",
    "Tally",
    "install",
    "peer",
    "recent_lines",
    "subscribe",
]

LOGGER_NAME = "workshop_lib"
WEBSOCKETS_LOGGER_NAME = "workshop_lib.websockets"  # the logger app.py hands to websockets
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")


class _MemoryHandler(logging.Handler):
    """Keeps the last lines and passes each new one to subscribers (any thread)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(_FORMAT)
        self.lines: deque[str] = deque(maxlen=capacity)
        self.subscribers: list[Callable[[str], None]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            with self._guard:
                self.lines.append(line)
                subscribers = list(self.subscribers)
            for subscriber in subscribers:
                subscriber(line)
        except Exception:
            self.handleError(record)


_handler = _MemoryHandler(capacity=500)


def install() -> None:
    """Attach the memory handler to the ``workshop_lib`` logger; again does nothing.

    Done by the first server started, and by the first reader of the log (:func:`subscribe`,
    :func:`recent_lines`), not at import.

    Having a handler also keeps Python's last-resort handler from writing warnings to
    stderr, which in a kernel is whichever cell is running.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        # websockets' own lines ("connection open", "server listening") repeat the app's;
        # keep its warnings and errors only (the CLI's --verbose shows everything).
        protocol_logger = logging.getLogger(WEBSOCKETS_LOGGER_NAME)
        if protocol_logger.level == logging.NOTSET:
            protocol_logger.setLevel(logging.WARNING)


def recent_lines() -> list[str]:
    """The last lines logged (at most 500), oldest first."""
    install()
    with _handler._guard:
        return list(_handler.lines)


def subscribe(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(line)`` for every new line; returns a function that unsubscribes."""
    install()
    with _handler._guard:
        _handler.subscribers.append(callback)

    def unsubscribe() -> None:
        with _handler._guard:
            if callback in _handler.subscribers:
                _handler.subscribers.remove(callback)

    return unsubscribe


def peer(connection: ServerConnection) -> str:
    """How a log line names a client: ``address:port``, or "a client" once it is gone."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "a client"


class Tally:
    """Logs events of one kind a line each, up to ``burst`` per ``window`` seconds; past that,
    counts them and logs one summary line when the window ends.

    ``what`` names the events in the summary ("connections refused"); ``kind=`` on each
    event breaks the summary down ("per-address limit 400, wrong token 12"). Call it on one
    thread (the server's loop); the summary is scheduled on the running loop, or written by
    the next event (or :meth:`flush`) where there is none.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        burst: int = 5,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.burst = burst
        self.window = window
        self.clock = clock
        self._started: float | None = None  # when the current window began
        self._shown = 0
        self._kinds: Counter[str] = Counter()
        self._level = logging.INFO  # the summary's: the highest level of its events
        self._timer: asyncio.TimerHandle | None = None

    def log(self, level: int, message: str, *args: object, kind: str = "") -> None:
        """One event: its own line while under ``burst`` in this window, else counted."""
        now = self.clock()
        if self._started is not None and now - self._started >= self.window:
            self.flush()
        if self._started is None:
            self._started = now
        self._kinds[kind] += 1
        self._level = max(self._level, level)
        if self._shown < self.burst:
            self._shown += 1
            self.logger.log(level, message, *args)
        elif self._timer is None:
            self._schedule(self._started + self.window - now)

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next event, or flush(), writes the summary
        self._timer = loop.call_later(max(0.0, delay), self.flush)

    def flush(self) -> None:
        """End the window: log the summary if any event went without a line."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        total = sum(self._kinds.values())
        if total > self._shown:
            kinds = ", ".join(f"{kind} {n}" for kind, n in self._kinds.most_common() if kind)
            self.logger.log(
                self._level,
                "%d %s in the last %g s (%d shown above%s)",
                total,
                self.what,
                self.window,
                self._shown,
                f"; {kinds}" if kinds else "",
            )
        self._started, self._shown, self._level = None, 0, logging.INFO
        self._kinds.clear()
