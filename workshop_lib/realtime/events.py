"""The Realtime API's typed JSON events, as the course's local server reads and writes them.

The names and shapes are the GA Realtime API's (``response.output_text.delta``, not the
beta ``response.text.delta``), so the official ``openai`` SDK parses every event it gets::

    event = parse_client_event('{"type": "response.create", "event_id": "e1"}')
    server_event("session.created", session=default_session("workshop-local"))

A client event that breaks the rules raises :class:`RealtimeError`, which becomes the
API's ``error`` event naming the client's ``event_id``: the session stays open.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUDIO_RATE",
    "CLIENT_EVENTS",
    "RealtimeError",
    "audio_seconds",
    "default_session",
    "item_text",
    "new_id",
    "parse_client_event",
    "server_event",
]

Event = dict[str, Any]

# What this server answers; anything else gets an error event naming the list.
CLIENT_EVENTS = (
    "session.update",
    "conversation.item.create",
    "response.create",
    "response.cancel",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)

# The API's default input: 16-bit mono PCM at 24 kHz, so one second is 48,000 bytes.
AUDIO_RATE = 24_000
AUDIO_BYTES_PER_SAMPLE = 2

# session.update fields this server accepts (the rest of the API's session is kept as given).
_SESSION_FIELDS = {
    "type",
    "model",
    "instructions",
    "output_modalities",
    "max_output_tokens",
    "audio",
    "tools",
    "tool_choice",
    "tracing",
    "truncation",
    "prompt",
    "include",
}
_RESPONSE_FIELDS = {
    "instructions",
    "output_modalities",
    "max_output_tokens",
    "metadata",
    "conversation",
    "input",
}
_PART_TYPES = {"user": "input_text", "system": "input_text", "assistant": "output_text"}


@dataclass
class RealtimeError(Exception):
    """A client event the server refuses: becomes an ``error`` event, never a close."""

    message: str
    code: str = "invalid_value"
    param: str | None = None
    event_id: str | None = None  # the client's event_id, so it can tell which one failed
    type: str = "invalid_request_error"

    def __str__(self) -> str:
        return self.message

    def event(self) -> Event:
        """The server's ``error`` event for this refusal."""
        return server_event(
            "error",
            error={
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "event_id": self.event_id,
            },
        )


def new_id(prefix: str) -> str:
    """An id in the API's style, e.g. ``resp_3f9a0c1b2d4e5f60``: unique, not guessable."""
    return f"{prefix}_{secrets.token_hex(8)}"


def server_event(type_: str, **fields: Any) -> Event:
    """A server event of ``type_``: every one carries its own ``event_id``."""
    return {"type": type_, "event_id": new_id("event"), **fields}


def default_session(model: str) -> Event:
    """The session a connection starts with: text out, 24 kHz PCM in, no turn detection."""
    pcm = {"type": "audio/pcm", "rate": AUDIO_RATE}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["text"],
        "instructions": "You are the workshop's local responder.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "audio": {
            # Text mode: audio comes in (as base64 in JSON events) but is not transcribed.
            "input": {
                "format": pcm,
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": None,
            },
            "output": {"format": pcm, "voice": "alloy", "speed": 1.0},
        },
    }


def audio_seconds(size: int, rate: int = AUDIO_RATE) -> float:
    """How long ``size`` bytes of 16-bit mono PCM at ``rate`` Hz play."""
    return size / (rate * AUDIO_BYTES_PER_SAMPLE)


def item_text(item: Mapping[str, Any]) -> str:
    """The text of a message item: its text parts (or transcripts) joined."""
    parts = item.get("content") or []
    return "".join(str(part.get("text") or part.get("transcript") or "") for part in parts)


# -- reading the client's events --------------------------------------------------------------


def parse_client_event(message: str | bytes) -> Event:
    """One client event, checked: its ``type`` is known and its fields have the right shapes.

    Raises :class:`RealtimeError` (with the client's ``event_id`` when it sent one).
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
        _CHECKS[kind](event)
    except RealtimeError as error:
        error.event_id = event_id
        raise
    return event


def _object(event: Mapping[str, Any], name: str, *, required: bool) -> dict[str, Any]:
    value = event.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise RealtimeError(
            f"{name!r} must be an object.",
            code="missing_required_parameter" if value is None else "invalid_type",
            param=name,
        )
    return value


def _unknown(fields: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    extra = sorted(set(fields) - allowed)
    if extra:
        raise RealtimeError(
            f"Unknown parameter: '{prefix}.{extra[0]}'.",
            code="unknown_parameter",
            param=f"{prefix}.{extra[0]}",
        )


def _modalities(value: Any, param: str) -> None:
    if value is None:
        return
    if value != ["text"]:
        raise RealtimeError(
            f'This local server answers in text only: {param} must be ["text"] '
            "(the real API also speaks audio).",
            code="invalid_value",
            param=param,
        )


def _string(value: Any, param: str) -> None:
    if value is not None and not isinstance(value, str):
        raise RealtimeError(f"{param} must be a string.", code="invalid_type", param=param)


def _check_session_update(event: Mapping[str, Any]) -> None:
    session = _object(event, "session", required=True)
    _unknown(session, _SESSION_FIELDS, "session")
    if session.get("type", "realtime") != "realtime":
        raise RealtimeError(
            "session.type must be 'realtime' on this endpoint.", param="session.type"
        )
    _string(session.get("instructions"), "session.instructions")
    _modalities(session.get("output_modalities"), "session.output_modalities")
    _max_tokens(session.get("max_output_tokens"), "session.max_output_tokens")


def _max_tokens(value: Any, param: str) -> None:
    if value is None or value == "inf":
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise RealtimeError(
            f'{param} must be a whole number from 1 to 4096, or "inf".', param=param
        )


def _check_item_create(event: Mapping[str, Any]) -> None:
    item = _object(event, "item", required=True)
    if item.get("type") != "message":
        raise RealtimeError(
            "This local server takes message items only: item.type must be 'message'.",
            param="item.type",
        )
    role = item.get("role")
    if role not in _PART_TYPES:
        raise RealtimeError("item.role must be 'user', 'system' or 'assistant'.", param="item.role")
    _string(item.get("id"), "item.id")
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise RealtimeError(
            "item.content must be a non-empty list of parts, e.g. "
            '[{"type": "input_text", "text": "Hello"}].',
            code="missing_required_parameter" if content is None else "invalid_value",
            param="item.content",
        )
    for index, part in enumerate(content):
        param = f"item.content[{index}]"
        if not isinstance(part, dict) or part.get("type") != _PART_TYPES[role]:
            raise RealtimeError(
                f'{param} must be {{"type": "{_PART_TYPES[role]}", "text": ...}} '
                f"for a {role} message.",
                param=f"{param}.type",
            )
        if not isinstance(part.get("text"), str):
            raise RealtimeError(
                f"{param}.text must be a string.", code="invalid_type", param=f"{param}.text"
            )
    _no_surrogates(item_text(item), "item.content")


def _no_surrogates(text: str, param: str) -> None:
    # json.loads lets "\ud800" through; such a string cannot be encoded to send it on.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RealtimeError(
            f"{param} holds an unpaired surrogate (\\ud800-\\udfff): not text.", param=param
        ) from None


def _check_response_create(event: Mapping[str, Any]) -> None:
    response = _object(event, "response", required=False)
    _unknown(response, _RESPONSE_FIELDS, "response")
    _string(response.get("instructions"), "response.instructions")
    _modalities(response.get("output_modalities"), "response.output_modalities")
    _max_tokens(response.get("max_output_tokens"), "response.max_output_tokens")
    metadata = response.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(isinstance(v, str) for v in metadata.values())
    ):
        raise RealtimeError(
            "response.metadata must map at most 16 keys to strings.", param="response.metadata"
        )
    if response.get("conversation", "auto") not in ("auto", "none"):
        raise RealtimeError(
            "response.conversation must be 'auto' or 'none'.", param="response.conversation"
        )


def _check_cancel(event: Mapping[str, Any]) -> None:
    _string(event.get("response_id"), "response_id")


def _check_append(event: Mapping[str, Any]) -> None:
    audio = event.get("audio")
    if not isinstance(audio, str):
        raise RealtimeError(
            "audio must be base64-encoded PCM (16-bit, mono, 24 kHz) in a string.",
            code="missing_required_parameter" if audio is None else "invalid_type",
            param="audio",
        )
    try:
        base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(
            "audio is not valid base64: encode the PCM bytes with base64.b64encode().",
            param="audio",
        ) from None


def _check_nothing(event: Mapping[str, Any]) -> None:
    """commit and clear carry no fields."""


_CHECKS = {
    "session.update": _check_session_update,
    "conversation.item.create": _check_item_create,
    "response.create": _check_response_create,
    "response.cancel": _check_cancel,
    "input_audio_buffer.append": _check_append,
    "input_audio_buffer.commit": _check_nothing,
    "input_audio_buffer.clear": _check_nothing,
}
