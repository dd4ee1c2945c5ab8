"""The chat's events, built in one place: what ``/chat`` says, on one process or on many.

    message("ada", "hi", ts, id=7)   # {'type': 'chat.message', 'id': 7, 'from': 'ada', ...}
    welcome("ada", users, history, room="9f2c...")
    joined("ada"), left("ada")
    raise join_first()               # a ProtocolError: the client gets an ``error`` event

``docs/protocol.md`` ("The chat room") is the contract these follow.
"""

from __future__ import annotations

from typing import Any

from ..wire.protocol import ProtocolError, error_event

__all__ = [
    "MAX_ID",
    "already_joined",
    "invalid_since",
    "join_first",
    "joined",
    "left",
    "message",
    "rate_limited",
    "store_down",
    "store_lost",
    "welcome",
]

# Ids come from a signed 64-bit counter (Redis's INCR), so no message has a larger one.
MAX_ID = 2**63 - 1


def message(sender: str, text: str, ts: float, id: int | None = None) -> dict[str, Any]:
    """A ``chat.message``; ``id`` is None until the room gives it one (Redis does, later)."""
    if id is None:
        return {"type": "chat.message", "from": sender, "text": text, "ts": ts}
    return {"type": "chat.message", "id": id, "from": sender, "text": text, "ts": ts}


def welcome(
    you: str,
    users: list[str],
    history: list[dict[str, Any]],
    room: str,
    resume: str | None = None,
) -> dict[str, Any]:
    """The ``chat.welcome`` a member gets when it joins (and again when its room is new).

    ``resume``: with Redis, the member's secret, for it alone: sent back with a rejoin, it
    proves the name is its own.
    """
    event = {"type": "chat.welcome", "you": you, "users": users, "history": history, "room": room}
    if resume is not None:
        event["resume"] = resume
    return event


def joined(name: str) -> dict[str, Any]:
    """``chat.joined``, to everyone (the joiner too, right after its welcome)."""
    return {"type": "chat.joined", "name": name}


def left(name: str) -> dict[str, Any]:
    """``chat.left``, to everyone, on any disconnect."""
    return {"type": "chat.left", "name": name}


# -- errors: each answered with an ``error`` event, the connection stays ------------------------


def join_first() -> ProtocolError:
    return ProtocolError("join_first", 'send {"type": "chat.join", "name": ...} first')


def already_joined(name: str) -> ProtocolError:
    return ProtocolError("already_joined", f"you are already in the room as {name!r}")


def invalid_since() -> ProtocolError:
    return ProtocolError(
        "invalid_since",
        f'"since" is the last message id you saw: a whole number from 0 to {MAX_ID}',
    )


def store_lost() -> ProtocolError:
    """Redis lost the room's data while a member posted."""
    return ProtocolError(
        "unavailable",
        "the room's store (Redis) lost its data: nothing was sent; the room starts "
        "again as a new room (a new welcome comes), try again in a moment",
    )


def store_down() -> ProtocolError:
    """Redis does not answer."""
    return ProtocolError(
        "unavailable",
        "the room's store (Redis) does not answer: nothing was sent; the server "
        "reconnects by itself, try again in a moment",
    )


def rate_limited(rate: float, burst: float) -> str:
    """The ``error`` event (encoded) for a message dropped by the rate limit."""
    return error_event(
        "rate_limited",
        f"slow down: at most {rate:g} messages a second (bursts of {burst:g}); "
        "this one was dropped",
    )
