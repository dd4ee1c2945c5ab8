"""Lesson 01, the echo: every message comes back unchanged.

from workshop_lib.echo import EchoPanel, format_handshake
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
