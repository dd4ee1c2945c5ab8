"""Lesson 05, the Realtime API: typed JSON events over one WebSocket, and the SDK on top.

    from workshop_lib.realtime import EventLog, RealtimeLesson, echo_responder
    from workshop_lib.realtime import Context, ToolCall, local_model     # lesson 07: tools
    from workshop_lib.realtime import VoiceWidget                         # lesson 08: voice

``events`` (the protocol), ``session``, ``responder`` and ``server`` load no widgets.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = [
    "Context",
    "EventLog",
    "RealtimeError",
    "RealtimeLesson",
    "RealtimeSession",
    "ToolCall",
    "VoiceWidget",
    "azure_client",
    "echo_responder",
    "local_model",
    "openai_client",
    "parse_client_event",
    "realtime_url",
    "text_session",
    "user_message",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "RealtimeError": ".events",
        "parse_client_event": ".events",
        "RealtimeSession": ".session",
        "echo_responder": ".responder",
        "Context": ".responder",
        "ToolCall": ".responder",
        "local_model": ".model",
        "RealtimeLesson": ".server",
        "user_message": ".client",
        "openai_client": ".client",
        "azure_client": ".client",
        "realtime_url": ".client",
        "text_session": ".client",
        "EventLog": ".widgets",
        "VoiceWidget": ".voice_widget",
    },
)
