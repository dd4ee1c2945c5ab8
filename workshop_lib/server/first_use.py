"""What a notebook's process needs once it uses a server, set up then rather than at import.

Importing ``workshop_lib`` changes nothing in the process (a program or a test that only
imports it keeps its logging and its tracebacks). The first server started
(:func:`~workshop_lib.server.start.start_server`, a
:class:`~workshop_lib.server.processes.ServerProcess`) or joined
(:func:`~workshop_lib.server.room.join_room_server`) calls :func:`set_up`, which installs,
once:

- the log kept for the notebook's log widget (``logs.py``), which also keeps Python's
  last-resort handler from printing the server's warnings into whichever cell runs;
- in an IPython kernel, one line instead of a traceback for a notebook's accidents
  (``notebook/accidents.py``).

``start_server()`` adds what only a server of this process needs: its port warning shown
every time, and every server stopped at exit.
"""

from __future__ import annotations

import threading

from ..notebook import accidents
from . import logs

__all__ = ["set_up"]

_lock = threading.Lock()
_done = False


def set_up() -> None:
    """Install the log's handler and the notebook's one-line errors; again does nothing."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
    logs.install()
    accidents.install()
