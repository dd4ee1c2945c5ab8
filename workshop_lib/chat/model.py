"""The chat room's rules, apart from the network: names, texts, history.

room = Room()
name = room.join("ada")             # 'ada' ('ada 2' if taken)
message = room.post(name, "hello")  # {'type': 'chat.message', 'id': 1, 'from': 'ada', ...}
room.leave(name)
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..wire.protocol import ProtocolError
from . import events
from .lookalike import invisible, skeleton

__all__ = [
    "HISTORY",
    "MAX_NAME",
    "MAX_TEXT",
    "Room",
    "clean_name",
    "clean_text",
]

MAX_NAME = 32
MAX_TEXT = 500
HISTORY = 50  # messages a late joiner receives


# Unicode categories a name may not use: controls (C0, DEL, C1), format characters (bidi
# overrides, zero-width joiners), the line and paragraph separators, and surrogates (only a
# lone one can be in a str, and it is no character: UTF-8 cannot even encode it).
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}

# A message keeps ordinary Unicode, emoji sequences (zero-width joiners, tags) included,
# and newlines and tabs; it may not carry controls (NUL, ESC for ANSI escapes, CR, which
# overwrites a terminal line), the line and paragraph separators, lone surrogates, or the
# bidi controls that reorder the text around them (the "Trojan Source" characters).
_TEXT_REFUSED = {"Cc", "Zl", "Zp", "Cs"}
_TEXT_ALLOWED = frozenset("\n\t")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(name: object) -> str:
    """A name trimmed of surrounding spaces, 1 to 32 characters, or a ``bad_value`` error."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise ProtocolError("bad_value", f"name must be text of 1 to {MAX_NAME} characters")
    # Control and format characters (newlines, escapes, U+2028, right-to-left overrides)
    # would let a name pose as other output or reverse the text around it.
    if any(unicodedata.category(c) in _INVISIBLE for c in name):
        raise ProtocolError("bad_value", "name must not contain control characters")
    # Characters that render as nothing would let "ad\u034fa" pass for "ada".
    hidden = invisible(name)
    if hidden is not None:
        at, c = hidden
        raise ProtocolError(
            "bad_value",
            f"name must not contain invisible characters (U+{ord(c):04X} at {at})",
        )
    return name.strip()


def clean_text(text: object) -> str:
    """A message trimmed of surrounding white space, 1 to 500 characters, with no control
    characters but newlines and tabs (see ``_TEXT_REFUSED``), or a ``bad_value`` error."""
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT:
        raise ProtocolError("bad_value", f"text must be 1 to {MAX_TEXT} characters")
    for at, c in enumerate(text):
        if c in _BIDI or (unicodedata.category(c) in _TEXT_REFUSED and c not in _TEXT_ALLOWED):
            raise ProtocolError(
                "bad_value",
                f"text must not contain control characters (U+{ord(c):04X} at {at}); "
                "newlines are fine",
            )
    return text.strip()


@dataclass
class Room:
    """Who is here, and the recent messages, with ids that only ever grow.

    Joining and leaving take constant time, however many share a name: a taken name gets
    the lowest number freed by a leaver, else the next never given (trying "x 2", "x 3", ...
    one by one would cost 2,000 joins as "x" 16 s of the server's loop in all).
    """

    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Names this room instance in each welcome: a restarted server is a new Room whose ids
    # start at 1 again, and a rejoining client must not take its messages for ones it has.
    instance: str = field(default_factory=lambda: secrets.token_hex(8))
    # Names are told apart by their look (lookalike.skeleton): "аda" (Cyrillic а) while
    # "ada" is here is numbered, as "ada" again would be.
    _here: dict[str, tuple[str, int]] = field(default_factory=dict)  # given -> (look, n)
    _looks: set[str] = field(default_factory=set)  # the skeletons of the names given
    _next: dict[str, int] = field(default_factory=dict)  # look -> next number never given
    _freed: dict[str, list[int]] = field(default_factory=dict)  # look -> heap of freed ones
    _holders: dict[str, int] = field(default_factory=dict)  # look -> names given for it here

    @property
    def users(self) -> list[str]:
        """Who is here, in the order they joined."""
        return list(self._here)

    def join(self, wanted: object) -> str:
        """Add a user; returns the name given, with a number added if it (or a name that
        looks the same) was taken."""
        name = clean_name(wanted)
        look = skeleton(name)
        if look not in self._looks:
            return self._give(name, look, 1)
        freed = self._freed.get(look, [])
        while True:
            # A freed number may be in use again under its own name ("x 2" typed in full):
            # skip it; each skip is paid for by the join or leave that made it.
            if freed:
                n = heapq.heappop(freed)
            else:
                n = self._next.get(look, 2)
                self._next[look] = n + 1
            given = _numbered(name, n)
            if skeleton(given) not in self._looks:
                return self._give(given, look, n)

    def _give(self, given: str, look: str, n: int) -> str:
        self._here[given] = (look, n)
        self._looks.add(skeleton(given))
        self._holders[look] = self._holders.get(look, 0) + 1
        return given

    def leave(self, name: str) -> None:
        """Remove a user (no error if already gone)."""
        if name not in self._here:
            return
        look, n = self._here.pop(name)
        self._looks.discard(skeleton(name))
        self._holders[look] -= 1
        if not self._holders[look]:
            # Nobody of that look is left: its numbers start again, and the room keeps no
            # entry per name ever used (40,000 joins left 15,000 of them).
            del self._holders[look]
            self._next.pop(look, None)
            self._freed.pop(look, None)
        elif n > 1:
            heapq.heappush(self._freed.setdefault(look, []), n)

    def post(self, sender: str, text: object, ts: float) -> dict[str, Any]:
        """Record a message and return its ``chat.message`` event."""
        text = clean_text(text)  # first: a refused message must not use up an id
        message = events.message(sender, text, ts, id=next(self._ids))
        self.history.append(message)
        return message

    def welcome(self, name: str, since: int | None = None) -> dict[str, Any]:
        """The ``chat.welcome`` event for a user who just joined.

        ``since``: the last id the user saw (a rejoin); the history then holds exactly the
        messages after it.
        """
        history = [m for m in self.history if since is None or m["id"] > since]
        return events.welcome(name, self.users, history, self.instance)


def _numbered(name: str, n: int) -> str:
    """``name`` with `` n`` added, shortened so that the whole stays within the limit."""
    suffix = f" {n}"
    return name[: MAX_NAME - len(suffix)] + suffix
