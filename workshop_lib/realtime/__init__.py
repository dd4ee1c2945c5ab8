"""Lesson 05, the Realtime API: typed JSON events over one WebSocket, and the SDK on top.

    from workshop_lib.realtime import EventLog, RealtimeLesson, echo_responder

``events`` (the protocol), ``session``, ``responder`` and ``server`` load no widgets.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = [
    "EventLog",
    "RealtimeError",
    "RealtimeLesson",
    "RealtimeSession",
    "azure_client",
    "echo_responder",
    "openai_client",
    "parse_client_event",
    "realtime_url",
    "user_message",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "RealtimeError": ".events",
        "parse_client_event": ".events",
        "RealtimeSession": ".session",
        "echo_responder": ".responder",
        "RealtimeLesson": ".server",
        "user_message": ".client",
        "openai_client": ".client",
        "azure_client": ".client",
        "realtime_url": ".client",
        "EventLog": ".widgets",
    },
)
