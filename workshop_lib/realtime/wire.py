"""The envelope every Realtime event shares: ids, the server's events, the ``error`` event.

    server_event("session.created", session=...)   # {"type": ..., "event_id": "event_...", ...}
    encode(event)                                  # its JSON text, as json.dumps writes it
    event_json("response.output_text.delta", f'"delta": {quote(text)}')   # the same, built
    raise RealtimeError("...", code="invalid_value", param="session.tools")

A client event the server refuses raises :class:`RealtimeError`, which becomes the API's
``error`` event naming the client's ``event_id``: the session stays open.
"""

from __future__ import annotations

import itertools
import json
import json.encoder
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "RealtimeError", "encode", "event_json", "new_id", "quote", "server_event"]

Event = dict[str, Any]

# Ids in the API's style: a random prefix per process and a counter, so they never repeat
# and cost a few hundred nanoseconds (an event id for every delta adds up under load).
_PREFIX = os.urandom(5).hex()
_COUNTER = itertools.count(1)


def new_id(prefix: str) -> str:
    """An id in the API's style, e.g. ``resp_3f9a0c1b2d000000001a``: unique in this process."""
    return f"{prefix}_{_PREFIX}{next(_COUNTER):012x}"


def server_event(type_: str, **fields: Any) -> Event:
    """A server event of ``type_``: every one carries its own ``event_id``."""
    return {"type": type_, "event_id": new_id("event"), **fields}


def _encoder() -> Any:
    """``json.dumps(value, ensure_ascii=False)``, from an encoder made once.

    ``JSONEncoder.encode`` makes a new C encoder at every call; events are many and small,
    so that setup was a good part of encoding one. No circular check: events are trees
    the session builds.
    """
    make = json.encoder.c_make_encoder
    if make is None:  # no C accelerator: the library's own path
        return json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    default = json.JSONEncoder().default
    quote = json.encoder.encode_basestring
    iterencode = make(None, default, quote, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


encode = _encoder()
# A string as JSON, quotes included, as the encoder above writes it (not ASCII-escaped).
quote = json.encoder.encode_basestring


def event_json(type_: str, fields: str) -> str:
    """A server event as JSON text: ``encode(server_event(type_, ...))`` without the dict.

    ``fields`` are the event's other fields, already JSON in the encoder's format
    (``'"item_id": "item_1", "delta": "Hi"'``). For the events a response sends most,
    whose shape is fixed and only ids and text change. ``type_`` is one of the API's names,
    which need no escaping.
    """
    return f'{{"type": "{type_}", "event_id": "{new_id("event")}", {fields}}}'


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
