"""Connection limits: how many WebSockets one address, and the whole server, may hold.

A room's server must stay usable when one laptop (a runaway loop, a curious learner) opens
thousands of connections: every connection costs the loop a little on each ball tick, and
2,000 of them take the whole core. So each WebSocket upgrade is admitted or refused at the
handshake, before it costs anything::

    limits = Limits(total=1000, per_address=50)
    refusal = limits.admit(connection)    # None, or (HTTP status, explanation, reason)
    ...
    limits.release(connection)            # when its TCP connection is gone (any order, twice)

A refused client gets HTTP 429 (its address holds too many) or 503 (the server is full),
with ``Retry-After``, and never a WebSocket. The counts are what ``/api/stats`` shows.
"""

from __future__ import annotations

import http
import time
from collections import Counter, deque
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from .auth import Refusal

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PER_ADDRESS",
    "Limits",
    "Recent",
]

# A room of a few hundred: each learner has a page or two and a notebook's clients open.
# On this kind of machine the ball's 60 Hz stream costs about 20 µs per client per tick, so
# about 1,000 connections is what one core can serve (docs/instructor.md, "Limits").
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_PER_ADDRESS = 50  # one laptop: browser tabs plus notebook clients, with room


class Recent:
    """Counts events in the last ``window`` seconds, in one-second buckets (memory: bounded)."""

    def __init__(self, window: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, n: int = 1) -> None:
        """Count ``n`` events now."""
        second = int(self.clock())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([second, n])
        self._expire(second)

    def count(self) -> int:
        """Events in the last ``window`` seconds."""
        self._expire(int(self.clock()))
        return sum(n for _, n in self._buckets)

    def _expire(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()


class Limits:
    """Caps on open WebSocket connections: ``total`` for the server, ``per_address`` each.

    ``None`` (or 0) means no cap. Counts are kept on the server's loop, so no locks.
    """

    def __init__(
        self,
        total: int | None = DEFAULT_MAX_CONNECTIONS,
        per_address: int | None = DEFAULT_MAX_PER_ADDRESS,
    ) -> None:
        for name, value in (("total", total), ("per_address", per_address)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be a number of connections, or 0 for no limit")
        self.total = total or None
        self.per_address = per_address or None
        self.by_address: Counter[str] = Counter()  # admitted connections still open
        self._holders: dict[ServerConnection, str] = {}  # connection -> its address
        self.refused: Counter[str] = Counter()  # refusals since the start, by reason
        self.recent = Recent()  # refusals in the last 10 s: a flood shows at once

    @property
    def open(self) -> int:
        """Admitted connections still open."""
        return len(self._holders)

    def admit(self, connection: ServerConnection) -> Refusal | None:
        """Count ``connection`` in, or say why not (then it is not counted)."""
        address = _address(connection)
        refusal = None
        if self.per_address is not None and self.by_address[address] >= self.per_address:
            refusal = Refusal(
                http.HTTPStatus.TOO_MANY_REQUESTS,
                f"Your address already holds {self.per_address} WebSocket connections to "
                "this server, its limit per address. Close some (other tabs, notebook "
                "clients) and try again; the instructor can raise it (--max-per-address).\n",
                "per-address limit",
            )
        elif self.total is not None and self.open >= self.total:
            refusal = Refusal(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"This server is full: {self.total} WebSocket connections, its limit. Try "
                "again in a minute; the instructor can raise it (--max-connections).\n",
                "server full",
            )
        if refusal is not None:
            self.note_refusal(refusal.reason)
            return refusal
        self._holders[connection] = address
        self.by_address[address] += 1
        return None

    def note_refusal(self, reason: str) -> None:
        """Count a refusal of any kind (the guard's too), for ``/api/stats``."""
        self.refused[reason] += 1
        self.recent.add()

    def release(self, connection: ServerConnection) -> None:
        """Count ``connection`` out (no error if it was never admitted, or already out)."""
        address = self._holders.pop(connection, None)
        if address is not None:
            self.by_address[address] -= 1
            if not self.by_address[address]:
                del self.by_address[address]  # keep the counter as small as the room

    def stats(self) -> dict[str, object]:
        """The limits, the open count, the busiest address's count, and the refusals."""
        return {
            "max_connections": self.total,
            "max_per_address": self.per_address,
            "open": self.open,
            "busiest_address": max(self.by_address.values(), default=0),
            "refused": dict(sorted(self.refused.items())),
            "refused_last_10s": self.recent.count(),
        }


def _address(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else "unknown"
