"""workshop_lib: the helper library of the WebSocket Basics Workshop.

from workshop_lib import start_server
server = start_server()     # a real asyncio WebSocket server on its own thread
server                      # its addresses, with links to the browser client
server.stop()
"""

from __future__ import annotations

__version__ = "0.1.0"

# The server logs through `logging` and never prints (see logs.py); LogView shows it.
from . import logs

logs.install()

# In a notebook, a cell run after the clean-up or interrupted says so in one line.
from . import accidents  # noqa: E402

accidents.install()

from .server import (  # noqa: E402
    PortFallbackWarning,
    PortInUseError,
    WorkshopServer,
    running_servers,
    start_server,
    stop_server,
)

__all__ = [
    "PortFallbackWarning",
    "PortInUseError",
    "WorkshopServer",
    "__version__",
    "running_servers",
    "start_server",
    "stop_server",
]
