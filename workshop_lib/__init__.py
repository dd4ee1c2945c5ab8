"""workshop_lib: the helper library of the WebSocket Basics Workshop.

from workshop_lib import start_server
server = start_server()     # a real asyncio WebSocket server on its own thread
server                      # its addresses, with links to the browser client
server.stop()

A lesson of your own (a plug-in, docs/architecture.md): ``from workshop_lib import Lesson, Page``.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The server logs through `logging` and never prints (see logs.py); LogView shows it.
from .server import logs

logs.install()

# In a notebook, a cell run after the clean-up or interrupted says so in one line.
from .notebook import accidents  # noqa: E402

accidents.install()

from .lazy import lazy_names  # noqa: E402
from .server.start import (  # noqa: E402
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
