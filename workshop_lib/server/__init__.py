"""The server a notebook starts, and what runs it.

``start.py`` starts and stops servers from a cell and keeps their registry; ``options.py`` a
server's settings, each written once (``ServerOptions``); ``loop.py`` is the event loop on its
own thread; ``tasks.py`` the owner of background tasks (each lesson's context);
``handle.py`` what every server handle has in common (addresses, token,
``connect()``); ``room.py`` the room's shared server an instructor runs and notebooks join
(``join_room_server()``); ``processes.py`` servers in processes of their own (lesson 06);
``ports.py`` who holds a port; ``logs.py`` the log kept for the notebook's widget; ``load.py``
how late the loop runs; ``memory.py`` memory given back after a crowd leaves; ``first_use.py``
what the first server started or joined sets up in the process (nothing is, at import).
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = [
    "PortFallbackWarning",
    "PortInUseError",
    "ServerOptions",
    "ServerProcess",
    "WorkshopServer",
    "free_port",
    "join_room_server",
    "room_server",
    "running_servers",
    "start_server",
    "stop_server",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "start_server": ".start",
        "stop_server": ".start",
        "running_servers": ".start",
        "WorkshopServer": ".start",
        "PortInUseError": ".start",
        "PortFallbackWarning": ".start",
        "ServerProcess": ".processes",
        "room_server": ".room",
        "join_room_server": ".room",
        "ServerOptions": ".options",
        "free_port": ".ports",
    },
)
