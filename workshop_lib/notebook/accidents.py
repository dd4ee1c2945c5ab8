"""One line, not a traceback, for the accidents every learner has in a notebook.

A cell run after the clean-up finds nothing listening; a cell interrupted (Kernel →
Interrupt) while it waits is cancelled. Python then shows a traceback through asyncio and
websockets that ends in a bare ``ConnectionRefusedError`` or ``CancelledError``: it says
neither what happened nor what to do. So, in an IPython kernel, :func:`install` (run by the
first server started or joined: ``server/first_use.py``) shows those as one line that says both;
``%tb`` still shows the whole traceback. Errors of the course's own that already say what to do
(:class:`Explained`, e.g. :class:`ServerNotRunning`, ``SharedServerError``) show their
message alone as well, wherever they are raised.

Nothing changes outside IPython: a script still gets the plain exception and its traceback.
"""

from __future__ import annotations

import asyncio
import errno
import re
import sys
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "START_ANY",
    "START_IT",
    "Explained",
    "ServerNotRunning",
    "install",
    "one_line",
    "refused_line",
]

# A notebook starts its own server in one of its first cells, with start_server(); lesson
# 06's servers are processes, started by cells of their own.
START_IT = "run the cell that starts it (the one with start_server), then this one again"
START_ANY = "run the cell that starts the server, then this one again"

_RED, _RESET = "\x1b[0;31m", "\x1b[0m"
_TB_HINT = "  (%tb shows the traceback)"


class Explained(Exception):
    """A course error whose message says what happened and what to do: IPython shows that
    line alone, without the traceback (its ``_render_traceback_`` hook)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{_RED}{type(self).__name__}{_RESET}: {self}"]


class ServerNotRunning(Explained, ConnectionRefusedError):
    """Nothing listens where a course client connects: the server is stopped (a clean-up
    cell ran) or was never started. Still a ``ConnectionRefusedError`` for code that
    catches that."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ECONNREFUSED, message)

    def __str__(self) -> str:
        return str(self.strerror)


def refused_line(exc: BaseException | None = None, url: str | None = None) -> str:
    """What a refused connection means here: which server is gone, and which cell to run.

    The address comes from ``url`` if given, else from ``exc``.
    """
    address = _url_address(url) if url else _address(exc) if exc is not None else None
    where = f"nothing listens at {address[0]}:{address[1]}" if address else "nothing listens there"
    stopped = None
    if address is not None:
        from ..server.start import stopped_server_at  # server.py imports this module

        stopped = stopped_server_at(address[1])
    if stopped is not None:
        return f"{where}: the server {stopped!r} was stopped (a clean-up cell); {START_IT}."
    return f"{where}: its server is stopped, or not started yet; {START_ANY}."


def one_line(exc: BaseException) -> str | None:
    """The one line shown for ``exc`` in a notebook, or None to show its traceback."""
    if isinstance(exc, Explained):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return refused_line(exc)
    if isinstance(exc, asyncio.CancelledError):
        return (
            "this cell was cancelled while it waited (Kernel → Interrupt does that); "
            "run it again to start over"
        )
    if isinstance(exc, KeyboardInterrupt):
        return "you interrupted this cell (Kernel → Interrupt); run it again to start over"
    return None


def _url_address(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.hostname is None:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme in ("https", "wss") else 80)


def _address(exc: BaseException) -> tuple[str, int] | None:
    """The (host, port) a refused connect tried: asyncio writes it into its message; a
    blocking client's ``socket.create_connection(address)`` holds it in its frame."""
    found = re.search(r"\('([^']+)', (\d+)", str(exc))
    if found:
        return found.group(1), int(found.group(2))
    tb = exc.__traceback__
    while tb is not None:
        address = tb.tb_frame.f_locals.get("address")
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
            return str(address[0]), address[1]
        tb = tb.tb_next
    return None


def _show_one_line(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str] | None:
    """IPython's custom exception handler: the one line as the cell's error output."""
    line = one_line(value)
    if line is None:  # not ours after all: the usual traceback
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    shell._get_exc_info((etype, value, tb))  # keeps it for %tb and sys.last_value
    # An Explained error has told everything; %tb shows the traceback of the others.
    hint = "" if isinstance(value, Explained) else _TB_HINT
    shell._showtraceback(etype, value, [f"{_RED}{etype.__name__}{_RESET}: {line}{hint}"])
    return None


def install() -> bool:
    """In an IPython kernel, show the accidents above as one line; True if it is installed.

    Leaves a custom handler that someone else set alone.
    """
    ipython = sys.modules.get("IPython")  # never imported here: a script stays lean
    shell = ipython.get_ipython() if ipython is not None else None
    # The handler writes through two of IPython's own methods (what ipykernel overrides to
    # send an error to the front end); an IPython without them keeps its usual tracebacks.
    if shell is None or not all(
        callable(getattr(shell, name, None)) for name in ("_get_exc_info", "_showtraceback")
    ):
        return False
    ours = (ConnectionRefusedError, asyncio.CancelledError, KeyboardInterrupt)
    current = getattr(shell, "custom_exceptions", ())
    if current and current != ours:
        return False
    shell.set_custom_exc(ours, _show_one_line)
    return True
