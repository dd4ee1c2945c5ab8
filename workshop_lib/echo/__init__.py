"""Lesson 01, the echo: every message comes back unchanged.

from workshop_lib.echo import EchoPanel, format_handshake

What is where:

- ``frames.py``: lesson 01's frame inspector: frames as bytes (FIN, opcode, mask, length)
  through websockets' Sans-I/O parser, and a table widget.
- ``server.py``: ``echo`` (three lines, websockets' own example shape) and ``EchoLesson`` (``/``
  and ``/echo``).
- ``widgets.py``: ``EchoPanel``: the echo as a widget, send and see what comes back.

The page: ``echo.js`` (the connection) with ``echo-view.js`` (the elements and the log).
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["EchoLesson", "EchoPanel", "echo", "echo_round_trips", "format_handshake"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "EchoLesson": ".server",
        "echo": ".server",
        "EchoPanel": ".widgets",
        "echo_round_trips": "..clients.round_trip",
        "format_handshake": "..clients.round_trip",
    },
)
