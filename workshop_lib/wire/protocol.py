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
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

__all__ = [
    "BACKOFF",
    "CLOSE_ERRORS",
    "HEARTBEAT",
    "HEARTBEAT_REPLY",
    "NO_RETRY",
    "Backoff",
    "Close",
    "ProtocolError",
    "announced_close",
    "client_rules",
    "closing_event",
    "encode",
    "error_event",
    "number_field",
    "parse_event",
]


class Close(IntEnum):
    """The close codes this course's servers send, and what each means."""

    NORMAL = 1000  # done: the client or the server closed on purpose
    GOING_AWAY = 1001  # the server is stopping (or restarting)
    POLICY = 1008  # a rule was broken; in the chat: too slow to keep up with the room
    TOO_BIG = 1009  # a message over the size limit
    INTERNAL = 1011  # a bug in a handler, or a peer that stopped answering pings
    UNAUTHORIZED = 4001  # no token, or a wrong one
    RATE_LIMITED = 4029  # kept sending far over the rate limit


# Closes that a new connection would not mend: a normal close, or being told to go away
# for a reason (too slow, a wrong token, flooding). Anything else (1001 the server
# restarting, 1006 the network lost, 1011 a dead peer) is worth a reconnect.
NO_RETRY = frozenset({Close.NORMAL, Close.POLICY, Close.UNAUTHORIZED, Close.RATE_LIMITED})


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnect attempts: ``first`` seconds, times ``factor`` each time, at
    most ``cap``, each scaled by a random ``1 ± jitter`` and still at most ``cap``."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 10.0
    jitter: float = 0.2


BACKOFF = Backoff()


def client_rules() -> dict[str, Any]:
    """The rules every client follows, as JSON: what ``static/rules.js`` must equal.

    The browser client and the ball's widget get them from here (a test keeps
    ``rules.js`` equal to this; the widget receives them as a trait).
    """
    return {
        "close": {code.name: int(code) for code in Close},
        "noRetry": sorted(int(code) for code in NO_RETRY),
        "backoff": asdict(BACKOFF),
    }


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


# A close code is not always delivered: jupyter-server-proxy (JupyterHub, Binder) and some
# other proxies end the browser's side with 1000, 1005 or 1006 whatever the server sent. So
# before closing for a reason (4001, 4029, 1008, 1009) the server says it in band, in an
# ``error`` event whose ``close`` field is the code it is about to close with. These are the
# events' default ``code`` names; 1008 has two reasons, each named where it is sent.
CLOSE_ERRORS: dict[int, str] = {
    Close.UNAUTHORIZED: "unauthorized",
    Close.RATE_LIMITED: "flooding",  # not "rate_limited": that one only drops a message
    Close.POLICY: "policy_violation",
    Close.TOO_BIG: "message_too_big",
}


def closing_event(
    close: int, message: str, code: str | None = None, *, any_path: bool = False
) -> dict[str, Any]:
    """The ``error`` event sent just before closing with ``close``, e.g. for 4001::

    {"type": "error", "code": "unauthorized", "message": "wrong token: ...", "close": 4001}

    ``any_path``: the core sends it (a wrong first-message token, a message over the size
    limit), before any lesson sees the connection, so it may reach a path that speaks the
    Realtime API's shape; it then also carries that shape's ``error`` object
    (``{"type", "code", "message"}``), which the ``openai`` SDK reads.
    """
    name = code or CLOSE_ERRORS.get(close, "closing")
    event: dict[str, Any] = {"type": "error", "code": name, "message": message, "close": int(close)}
    if any_path:
        event["error"] = {"type": "invalid_request_error", "code": name, "message": message}
    return event


def announced_close(event: object) -> int | None:
    """The close code an ``error`` event announces (its ``close`` field), else None.

    Clients take it as the real reason when the close they then see is 1000, 1005 or 1006
    (a proxy's), so they neither retry nor report "connection lost" after a wrong token.
    """
    if not isinstance(event, dict) or event.get("type") != "error":
        return None
    close = event.get("close")
    # bool is an int in Python: true is no close code.
    if isinstance(close, bool) or not isinstance(close, int) or not 1000 <= close <= 4999:
        return None
    return close


def parse_event(message: str | bytes, allowed: Collection[str]) -> dict[str, Any]:
    """Decode one client message into an event whose ``type`` is in ``allowed``.

    Raises :class:`ProtocolError` with code ``binary_not_supported``, ``bad_json``,
    ``not_an_object``, ``unknown_type``, or ``bad_value`` for a lone surrogate anywhere in it.
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
    # Only a \u escape can make one (the frame itself was valid UTF-8): look only then.
    if "\\u" in message and _has_lone_surrogate(event):
        raise ProtocolError(
            "bad_value",
            "an event's text must be valid Unicode: a lone surrogate (\\ud800-\\udfff) is "
            "half of a character, which no other client could show",
        )
    kind = event.get("type")
    if kind not in allowed:
        known = ", ".join(sorted(allowed))
        raise ProtocolError(
            "unknown_type", f"unknown event type {kind!r}; this path takes: {known}"
        )
    return event


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: object) -> bool:
    """True if any string in ``value`` (keys included) holds a surrogate code point.

    json.loads() joins a proper pair ("\\ud83d\\ude00") into one character, so what is
    left is always a lone half, which UTF-8 cannot encode: echoing it would fail. A walk
    with a list, not recursion: JSON nested as deep as json.loads() takes would otherwise
    overflow the stack here and be blamed on a surrogate it does not hold.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def number_field(event: dict[str, Any], name: str, low: float, high: float) -> float:
    """``event[name]`` as a float within ``[low, high]``; else ``missing_field``/``bad_value``."""
    if name not in event:
        raise ProtocolError("missing_field", f"{event.get('type')} needs a field {name!r}")
    value = event[name]
    # bool is an int in Python; true is not a speed.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ProtocolError("bad_value", f"{name} must be a number from {low:g} to {high:g}")
    return float(value)
