"""The server's log: kept in memory for the notebook's log widget, never printed.

A server thread that printed would land its lines in whichever cell happens to run. So
`workshop_lib` only logs, and this module keeps the recent records, so that a log widget
opened late still shows how the server started::

    from workshop_lib.logs import recent_lines, subscribe
    recent_lines()                 # ['04:12:01 INFO server 'workshop' listening on ...', ...]
    unsubscribe = subscribe(print_line_somewhere)
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["LOGGER_NAME", "WEBSOCKETS_LOGGER_NAME", "install", "recent_lines", "subscribe"]

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
    """Attach the memory handler to the ``workshop_lib`` logger (done once, on import).

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
    with _handler._guard:
        return list(_handler.lines)


def subscribe(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(line)`` for every new line; returns a function that unsubscribes."""
    with _handler._guard:
        _handler.subscribers.append(callback)

    def unsubscribe() -> None:
        with _handler._guard:
            if callback in _handler.subscribers:
                _handler.subscribers.remove(callback)

    return unsubscribe
