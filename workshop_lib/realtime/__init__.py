"""Lesson 05, the Realtime API: typed JSON events over one WebSocket, and the SDK on top.

    from workshop_lib.realtime import EventLog, RealtimeLesson, echo_responder
    from workshop_lib.realtime import Context, ToolCall, local_model     # lesson 07: tools
    from workshop_lib.realtime import VoiceWidget                         # lesson 08: voice

``events`` (the protocol), ``session``, ``responder`` and ``server`` load no widgets.

What is where:

- ``audio.py``: PCM16, base64, G.711 (``audio/pcmu``, ``audio/pcma``), WAV.
- ``client.py``: ``user_message``, ``realtime_url``, ``openai_client`` / ``azure_client``: the
  official SDK pointed at the course's server.
- ``events.py``: the Realtime API's GA events: ``parse_client_event`` (checks each client event,
  ``RealtimeError`` → the API's ``error`` event with the client's ``event_id``),
  ``server_event``, the default session. No network.
- ``keys.py``: ephemeral ``ek_`` keys: minted by ``POST /v1/realtime/client_secrets`` (the SDK)
  and ``POST /api/realtime/client_secret`` (a browser page), scoped to the Realtime routes,
  expiring.
- ``model.py``: ``local_model``: the deterministic local "model" that answers from the
  conversation and calls the tools it is given.
- ``responder.py``: the local "model": ``echo_responder`` and ``stream()``, which runs a
  learner's plain function on threads so it never blocks the loop.
- ``server.py``: ``RealtimeLesson``: ``/v1/realtime``, ``/openai/realtime``,
  ``/openai/v1/realtime``; keys from ``api-key`` or the browser's subprotocol
  (``credential()``); per-connection rate limit; counts.
- ``session.py``: ``RealtimeSession``: one connection's settings, conversation, audio buffer and
  its one streaming response (a task, so ``response.cancel`` lands mid-stream).
- ``shapes.py``: the client objects' shapes (session, tools, items, audio formats, turn
  detection), checked field by field as the service does; a bad field is an ``error`` naming its
  ``param``.
- ``speech.py``: real speech made locally (eSpeak NG through ``espeakng-loader``; tones where no
  engine), word by word, for spoken answers and tests.
- ``turns.py``: ``TurnDetector``: ``server_vad`` on the audio's own clock (WebRTC VAD through
  ``webrtcvad-wheels``, ``soxr`` to resample).
- ``voice_widget.py``: ``VoiceWidget(server)``: the browser's voice page (``realtime/voice-
  core.js``) in a notebook cell.
- ``widgets.py``: ``EventLog``: events live, grouped by response and item, the text assembling.
- ``wire.py``: the envelope every event shares: ids, ``server_event``, ``RealtimeError``.
- ``writer.py``: ``EventWriter``: the events one loop turn makes, in one write.
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
