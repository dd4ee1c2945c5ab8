"""workshop_lib: the helper library of the WebSocket Basics Workshop.

    from workshop_lib import start_server
    server = start_server()     # a real asyncio WebSocket server on its own thread
    server                      # its addresses, with links to the browser client
    server.stop()
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

# The server logs through `logging`, never print(): a server thread that printed would
# land its lines in whichever notebook cell happens to be running. The NullHandler keeps
# Python's last-resort handler from writing them to stderr (which is such a cell, too);
# a notebook that wants the log shows workshop_lib.widgets.LogView.
logging.getLogger("workshop_lib").addHandler(logging.NullHandler())

from .server import (  # noqa: E402  (after __version__, which app.py reads)
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
