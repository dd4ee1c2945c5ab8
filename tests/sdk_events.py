"""The Realtime server's events as the official SDK sees them: each one parsed whole by the
SDK's own GA types, with no field those types do not know (the session's ``id`` and
``object`` aside, which the service sends too).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)
NO_PROXY = {"proxy": None}  # the kernel's own loopback server: never through HTTP(S)_PROXY
TIMEOUT = 10
ALLOWED_EXTRAS = {"session.id", "session.object"}


def _extras(value: object, path: str) -> list[str]:
    found = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{k}".lstrip(".") for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            found += _extras(entry, f"{path}[{index}]")
    return found


def strict(raw: str | bytes) -> dict:
    """The event as JSON, after the SDK's types parsed it whole, with no unknown field."""
    event = json.loads(raw)
    parsed = SERVER_EVENT.validate_python(event)
    extras = set(_extras(parsed, "")) - ALLOWED_EXTRAS
    assert not extras, (event["type"], extras)
    return event


async def recv(connection: Any) -> dict:
    """The next event of an SDK realtime connection, checked by :func:`strict`."""
    return strict(await asyncio.wait_for(connection.recv_bytes(), TIMEOUT))


async def until(connection: Any, kind: str) -> list[dict]:
    """Every event up to and including the first of type ``kind``."""
    seen: list[dict] = []
    while not seen or seen[-1]["type"] != kind:
        seen.append(await recv(connection))
    return seen


async def ask_for_text(connection: Any) -> dict:
    """Ask an SDK connection's session for answers in text, as a text client of the service
    must (it answers in audio by default); the ``session.updated`` (events before it skipped)."""
    await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
    return (await until(connection, "session.updated"))[-1]


def user_item(text: str) -> dict:
    """A user's text message, as conversation.item.create takes it."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
