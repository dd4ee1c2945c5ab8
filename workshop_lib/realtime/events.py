"""The Realtime API's typed JSON events, as the course's local server reads and writes them.

The names and shapes are the GA Realtime API's (``response.output_text.delta``, not the
beta ``response.text.delta``), so the official ``openai`` SDK parses every event it gets::

    event = parse_client_event('{"type": "response.create", "event_id": "e1"}')
    server_event("session.created", session=default_session("workshop-local"))

Every field of a client event is checked as the service checks it (``shapes``): a client
event that breaks the rules raises :class:`RealtimeError`, which becomes the API's ``error``
event naming the field and the client's ``event_id``: the session stays open.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from . import shapes
from .wire import Event, RealtimeError, new_id, server_event

__all__ = [
    "AUDIO_RATE",
    "CLIENT_EVENTS",
    "Event",
    "RealtimeError",
    "audio_seconds",
    "default_session",
    "item_text",
    "new_id",
    "parse_client_event",
    "server_event",
]

# What this server answers; anything else gets an error event naming the list.
CLIENT_EVENTS = (
    "session.update",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.delete",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)

# The API's default input: 16-bit mono PCM at 24 kHz, so one second is 48,000 bytes.
AUDIO_RATE = 24_000
AUDIO_BYTES_PER_SAMPLE = 2


def default_session(model: str) -> Event:
    """The session a connection starts with: the service's defaults.

    Answers in audio with its transcript beside it (``output_modalities: ["audio"]``), and
    turn detection on (``server_vad`` with its default settings), 24 kHz PCM in and out. A
    text client asks for ``["text"]`` with a ``session.update``, as it must on the service.
    A session that never appends audio gives the detector nothing to hear: no turn starts.
    """
    pcm = {"type": "audio/pcm", "rate": AUDIO_RATE}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are the workshop's local responder.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "audio": {
            "input": {
                "format": pcm,
                # Transcription is off until asked for (and this server recognizes no speech).
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _default_turn_detection(),
            },
            "output": {"format": pcm, "voice": "alloy", "speed": 1.0},
        },
    }


def _default_turn_detection() -> Event:
    """``server_vad`` with the defaults a ``session.update`` of it gets (one source)."""
    return {"type": "server_vad", **shapes.TURN_DETECTION.check({"type": "server_vad"}, "")}


def audio_seconds(size: int, rate: int = AUDIO_RATE) -> float:
    """How long ``size`` bytes of 16-bit mono PCM at ``rate`` Hz play."""
    return size / (rate * AUDIO_BYTES_PER_SAMPLE)


def item_text(item: Mapping[str, Any]) -> str:
    """The text of a message item: its text parts (or transcripts) joined."""
    parts = item.get("content") or []
    return "".join(str(part.get("text") or part.get("transcript") or "") for part in parts)


# -- reading the client's events --------------------------------------------------------------

_EVENT_ID = shapes.Str(max_len=512)
_ITEM_ID = shapes.Str(max_len=64)
# Each client event's own fields, beside "type" and "event_id".
_EVENTS: dict[str, shapes.Obj] = {
    "session.update": shapes.Obj({"session": shapes.SESSION}, required=("session",)),
    "conversation.item.create": shapes.Obj(
        {"item": shapes.ITEM, "previous_item_id": shapes.Str(max_len=64, nullable=True)},
        required=("item",),
    ),
    "conversation.item.retrieve": shapes.Obj({"item_id": _ITEM_ID}, required=("item_id",)),
    "conversation.item.delete": shapes.Obj({"item_id": _ITEM_ID}, required=("item_id",)),
    "conversation.item.truncate": shapes.Obj(
        {
            "item_id": _ITEM_ID,
            "content_index": shapes.Number(0, 0, whole=True),
            "audio_end_ms": shapes.Number(0, None, whole=True),
        },
        required=("item_id", "content_index", "audio_end_ms"),
    ),
    # The SDK sends "response": null for response.create(response=None): the defaults.
    "response.create": shapes.Obj(
        {"response": shapes.Either("an object", dict=shapes.RESPONSE, nullable=True)}
    ),
    "response.cancel": shapes.Obj({"response_id": shapes.Str(max_len=64)}),
    "input_audio_buffer.append": shapes.Obj({"audio": shapes.Str()}, required=("audio",)),
    "input_audio_buffer.commit": shapes.Obj({}),
    "input_audio_buffer.clear": shapes.Obj({}),
}


def parse_client_event(message: str | bytes) -> Event:
    """One client event, checked: its ``type`` is known and every field has the right shape.

    Returns the event with the defaults filled in (a tool's ``description``, a turn
    detection's ``threshold``). Raises :class:`RealtimeError` (with the client's
    ``event_id`` when it sent one).
    """
    if isinstance(message, bytes):
        raise RealtimeError(
            "Binary frames carry nothing here: every event is a JSON text frame, audio "
            "included (base64 in input_audio_buffer.append).",
            code="invalid_event",
        )
    try:
        event = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        raise RealtimeError(
            "The message is not valid JSON; send one JSON object per message.",
            code="invalid_json",
        ) from None
    if not isinstance(event, dict):
        raise RealtimeError(
            'An event is a JSON object with a "type", e.g. {"type": "response.create"}.',
            code="invalid_event",
        )
    event_id = event.get("event_id")
    event_id = event_id if isinstance(event_id, str) else None
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_EVENTS:
        shown = kind if isinstance(kind, str) else json.dumps(kind)
        raise RealtimeError(
            f"Invalid value: {shown[:60]!r}. Supported values are: {', '.join(CLIENT_EVENTS)}.",
            code="invalid_value" if "type" in event else "missing_required_parameter",
            param="type",
            event_id=event_id,
        )
    try:
        fields = {k: v for k, v in event.items() if k not in ("type", "event_id")}
        if "event_id" in event:
            _EVENT_ID.check(event["event_id"], "event_id")
        checked = _EVENTS[kind].check(fields, "")
        if kind == "input_audio_buffer.append":
            _base64(checked["audio"])
    except RealtimeError as error:
        error.event_id = event_id
        raise
    return {"type": kind, **({"event_id": event_id} if "event_id" in event else {}), **checked}


def _base64(audio: str) -> None:
    try:
        base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(
            "audio is not valid base64: encode the PCM bytes with base64.b64encode().",
            param="audio",
        ) from None
