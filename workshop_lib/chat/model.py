"""The chat room's rules, apart from the network: names, texts, history, and a rate limit.

room = Room()
name = room.join("ada")             # 'ada' ('ada 2' if taken)
message = room.post(name, "hello")  # {'type': 'chat.message', 'id': 1, 'from': 'ada', ...}
room.leave(name)

bucket = TokenBucket(capacity=10, rate=5)
bucket.take(now)                    # False once the client sends too fast
"""

from __future__ import annotations

import itertools
import secrets
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol import ProtocolError

__all__ = [
    "HISTORY",
    "MAX_NAME",
    "MAX_TEXT",
    "Room",
    "TokenBucket",
    "clean_name",
    "clean_text",
]

MAX_NAME = 32
MAX_TEXT = 500
HISTORY = 50  # messages a late joiner receives


# Unicode categories a name may not use: controls (C0, DEL, C1), format characters (bidi
# overrides, zero-width joiners), and the line and paragraph separators.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}


def clean_name(name: object) -> str:
    """A name trimmed of surrounding spaces, 1 to 32 characters, or a ``bad_value`` error."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise ProtocolError("bad_value", f"name must be text of 1 to {MAX_NAME} characters")
    # Control and format characters (newlines, escapes, U+2028, right-to-left overrides)
    # would let a name pose as other output or reverse the text around it.
    if any(unicodedata.category(c) in _INVISIBLE for c in name):
        raise ProtocolError("bad_value", "name must not contain control characters")
    return name.strip()


def clean_text(text: object) -> str:
    """A message trimmed of surrounding white space, 1 to 500 characters."""
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT:
        raise ProtocolError("bad_value", f"text must be 1 to {MAX_TEXT} characters")
    return text.strip()


@dataclass
class Room:
    """Who is here, and the recent messages, with ids that only ever grow."""

    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    users: list[str] = field(default_factory=list)  # in the order they joined
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Names this room instance in each welcome: a restarted server is a new Room whose ids
    # start at 1 again, and a rejoining client must not take its messages for ones it has.
    instance: str = field(default_factory=lambda: secrets.token_hex(8))

    def join(self, wanted: object) -> str:
        """Add a user; returns the name given, with a number added if it was taken."""
        name = clean_name(wanted)
        given, n = name, 1
        while given in self.users:
            n += 1
            suffix = f" {n}"
            given = name[: MAX_NAME - len(suffix)] + suffix
        self.users.append(given)
        return given

    def leave(self, name: str) -> None:
        """Remove a user (no error if already gone)."""
        if name in self.users:
            self.users.remove(name)

    def post(self, sender: str, text: object, ts: float) -> dict[str, Any]:
        """Record a message and return its ``chat.message`` event."""
        text = clean_text(text)  # first: a refused message must not use up an id
        message = {
            "type": "chat.message",
            "id": next(self._ids),
            "from": sender,
            "text": text,
            "ts": ts,
        }
        self.history.append(message)
        return message

    def welcome(self, name: str) -> dict[str, Any]:
        """The ``chat.welcome`` event for a user who just joined."""
        return {
            "type": "chat.welcome",
            "you": name,
            "users": list(self.users),
            "history": list(self.history),
            "room": self.instance,
        }


@dataclass
class TokenBucket:
    """Allows bursts of ``capacity`` events, then ``rate`` per second.

    Time is passed in (``now``), so the limit is tested without waiting.
    """

    capacity: float = 10.0
    rate: float = 5.0
    tokens: float = -1.0  # full on first use
    updated: float = 0.0

    def take(self, now: float) -> bool:
        """Spend a token if there is one: True if the event is allowed."""
        if self.tokens < 0:
            self.tokens, self.updated = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
