"""Typed JSON events: parse, validate, build. The shape the Azure OpenAI Realtime API uses.

Every event is a JSON object with a dotted ``type``. A bad event is answered with an
``error`` event and the connection stays up::

    try:
        event = parse_event(message, allowed={"ball.control", "ball.kick"})
    except ProtocolError as error:
        await websocket.send(error.event())
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

__all__ = [
    "HEARTBEAT",
    "HEARTBEAT_REPLY",
    "ProtocolError",
    "encode",
    "error_event",
    "number_field",
    "parse_event",
]

# A browser's page cannot see WebSocket pings, so it sends {"type": "heartbeat"} now and
# then, and counts the connection dead if no answer (nor anything else) comes back.
HEARTBEAT = "heartbeat"


class ProtocolError(ValueError):
    """A client's event was wrong; ``code`` is stable for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def event(self) -> str:
        """The ``error`` event to send back, encoded."""
        return error_event(self.code, self.message)


def encode(event: dict[str, Any]) -> str:
    """Encode an event compactly (these go out 60 times a second to every client)."""
    return json.dumps(event, separators=(",", ":"))


HEARTBEAT_REPLY = encode({"type": HEARTBEAT})


def error_event(code: str, message: str) -> str:
    """``{"type": "error", "code": ..., "message": ...}``, encoded."""
    return encode({"type": "error", "code": code, "message": message})


def parse_event(message: str | bytes, allowed: Collection[str]) -> dict[str, Any]:
    """Decode one client message into an event whose ``type`` is in ``allowed``.

    Raises :class:`ProtocolError` with code ``binary_not_supported``, ``bad_json``,
    ``not_an_object`` or ``unknown_type``.
    """
    if isinstance(message, bytes):
        raise ProtocolError("binary_not_supported", "send events as JSON text, not binary")
    try:
        event = json.loads(message)
    except (ValueError, RecursionError):
        # RecursionError: thousands of nested brackets, well within the size limit.
        raise ProtocolError("bad_json", "that message is not valid JSON") from None
    if not isinstance(event, dict):
        raise ProtocolError("not_an_object", 'an event is a JSON object: {"type": ...}')
    kind = event.get("type")
    if kind not in allowed:
        known = ", ".join(sorted(allowed))
        raise ProtocolError(
            "unknown_type", f"unknown event type {kind!r}; this path takes: {known}"
        )
    return event


def number_field(event: dict[str, Any], name: str, low: float, high: float) -> float:
    """``event[name]`` as a float within ``[low, high]``; else ``missing_field``/``bad_value``."""
    if name not in event:
        raise ProtocolError("missing_field", f"{event.get('type')} needs a field {name!r}")
    value = event[name]
    # bool is an int in Python; true is not a speed.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ProtocolError("bad_value", f"{name} must be a number from {low:g} to {high:g}")
    return float(value)
