"""workshop_lib: the helper library of the WebSocket Basics Workshop.

from workshop_lib import start_server
server = start_server()     # a real asyncio WebSocket server on its own thread
server                      # its addresses, with links to the browser client
server.stop()

A lesson of your own (a plug-in, docs/architecture.md): ``from workshop_lib import Lesson, Page``.

Importing it changes nothing in the process: the log kept for the notebook's widget, the
one-line errors of a notebook's accidents, the port warning and the stop of every server at
exit are set up by the first server started (:func:`start_server`).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .lazy import lazy_names
from .server.start import (
    PortFallbackWarning,
    PortInUseError,
    WorkshopServer,
    running_servers,
    start_server,
    stop_server,
)

# The plug-in API, imported on first use (lazy.py).
__getattr__, _ = lazy_names(__name__, {"Lesson": ".lesson", "Page": ".lesson"})


def __dir__() -> list[str]:
    return sorted({*globals(), "Lesson", "Page"})


__all__ = [
    "Lesson",
    "Page",
    "PortFallbackWarning",
    "PortInUseError",
    "WorkshopServer",
    "__version__",
    "running_servers",
    "start_server",
    "stop_server",
]
