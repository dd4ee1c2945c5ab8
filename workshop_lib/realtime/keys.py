"""Ephemeral keys: short-lived ``ek_`` keys that open Realtime sessions, and nothing else.

A browser page must never hold the server's token (or, with the real service, the API key):
anything a page holds, its visitor can read. So a small back-end route, authorized by the
token, mints a key that opens Realtime sessions for a few minutes, with the session settings
it was minted with, as the service's ``POST /v1/realtime/client_secrets`` does::

    store = KeyStore()
    key = store.mint(session, settings)     # EphemeralKey(value="ek_...", expires_at=..., ...)
    store.check(key.value)                  # the key while it is valid, else None
    key.response()                          # {"value": "ek_...", "expires_at": ..., "session": ...}

The store is judged on ``clock`` (epoch seconds; inject one in tests), holds a bounded
number of keys, and finds a key by its SHA-256, so how long a lookup takes says nothing
about the keys it holds.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import shapes
from .wire import Event, RealtimeError, new_id

__all__ = [
    "DEFAULT_TTL",
    "MAX_KEYS",
    "MAX_TTL",
    "MIN_TTL",
    "PREFIX",
    "EphemeralKey",
    "KeyStore",
    "check_request",
    "is_ephemeral",
]

PREFIX = "ek_"
# The service's bounds for expires_after.seconds, and its default.
DEFAULT_TTL = 600
MIN_TTL = 10
MAX_TTL = 7200
# Keys a store holds at most (the oldest go first): a route that mints on every call must
# not let a loop of calls grow the server's memory without end.
MAX_KEYS = 10_000
PRUNE_AFTER = 60  # seconds after a key expires that it is forgotten

EXPIRES_AFTER = shapes.Obj(
    {
        "anchor": shapes.Enum("created_at"),
        "seconds": shapes.Number(MIN_TTL, MAX_TTL, whole=True),
    },
    defaults={"anchor": "created_at", "seconds": DEFAULT_TTL},
)
REQUEST = shapes.Obj({"expires_after": EXPIRES_AFTER, "session": shapes.SESSION})


def is_ephemeral(key: str) -> bool:
    """Whether ``key`` has the form of an ephemeral key (``ek_...``), valid or not."""
    return key.startswith(PREFIX)


def check_request(body: Any) -> tuple[int, Event]:
    """The seconds a key lives and the session settings it carries, from a
    ``client_secrets`` request body (a parsed JSON value).

    Raises :class:`RealtimeError` naming the field, as ``session.update`` is refused.
    """
    if not isinstance(body, dict):
        raise RealtimeError(
            "The request body is a JSON object, e.g. "
            '{"session": {"type": "realtime"}, "expires_after": {"anchor": "created_at", '
            '"seconds": 600}}.',
            code="invalid_type",
        )
    checked = REQUEST.check(body, "")
    seconds = checked.get("expires_after", {}).get("seconds", DEFAULT_TTL)
    return seconds, checked.get("session") or {}


@dataclass(frozen=True)
class EphemeralKey:
    """One key: its ``value``, when it was made and expires (epoch seconds), and the
    session settings (``settings``, as a ``session.update`` would carry them) it applies."""

    value: str
    created_at: int
    expires_at: int
    settings: Event
    session: Event  # what session.created shows for a session it opens (the id aside)

    def response(self) -> Event:
        """The service's answer to a ``client_secrets`` request."""
        return {
            "value": self.value,
            "expires_at": self.expires_at,
            "session": copy.deepcopy(self.session),
        }


class KeyStore:
    """The keys a Realtime lesson has minted, until they expire.

    ``clock``: the time in epoch seconds (``time.time``); ``max_keys``: how many it holds.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._keys: dict[bytes, EphemeralKey] = {}  # by the SHA-256 of the value
        self.minted = 0  # since the start, for the lesson's counts

    def mint(self, session: Event, settings: Event, seconds: int = DEFAULT_TTL) -> EphemeralKey:
        """A new key living ``seconds``, for ``session`` (the whole session it opens, its
        ``settings`` applied) and those ``settings``."""
        now = int(self.clock())
        self._prune(now)
        value = PREFIX + secrets.token_urlsafe(24)
        key = EphemeralKey(
            value=value,
            created_at=now,
            expires_at=now + seconds,
            settings=copy.deepcopy(settings),
            session={**copy.deepcopy(session), "id": new_id("sess"), "expires_at": now + seconds},
        )
        self._keys[_digest(value)] = key
        while len(self._keys) > self.max_keys:
            self._keys.pop(next(iter(self._keys)), None)
        self.minted += 1
        return key

    def check(self, value: str) -> EphemeralKey | None:
        """The key called ``value`` if it was minted here and has not expired, else None."""
        key = self._keys.get(_digest(value))
        if key is None or self.clock() >= key.expires_at:
            return None
        return key

    def find(self, value: str) -> EphemeralKey | None:
        """The key called ``value`` even if it has just expired (a handshake that checked
        it may finish after), or None."""
        return self._keys.get(_digest(value))

    def __len__(self) -> int:
        return len(self._keys)

    def _prune(self, now: float) -> None:
        # A minute late: find() still serves a handshake that checked a key just in time.
        expired = [d for d, key in self._keys.items() if now >= key.expires_at + PRUNE_AFTER]
        for digest in expired:
            self._keys.pop(digest, None)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
