"""Giving memory back to the system after a crowd of connections has left.

Every connection's buffers are small, but 500 clients that send 60 KB messages and never
read still make the server allocate a few hundred MB of them. Python frees those buffers
when the clients leave; glibc's allocator keeps the freed pages for later, so the
server's resident memory stays at its peak (measured: 102 MB grown to 263 MB, for good).
``malloc_trim(0)`` hands the free pages back. A connection's buffers are only freed once
the garbage collector has broken its reference cycles (task, futures, transport), so a trim
collects first. Both walk memory (tens of ms after such a crowd), so they run once, when a
wave of closes has settled, not on every close::

    trim = Trimmer()
    trim.closed()        # on each closed connection (on the loop); trims 1 s after a wave
    release_memory()     # at once: True where the C library has malloc_trim (glibc)
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

__all__ = ["Trimmer", "release_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_TRIM = _malloc_trim()  # None on macOS, Windows, musl: their allocators return memory anyway


def release_memory() -> bool:
    """Return freed heap pages to the system now; False where there is no way to."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class Trimmer:
    """Collects garbage and calls :func:`release_memory` once ``wave`` connections closed and
    no other closed for ``delay`` seconds (or ``patience`` seconds into steady churn), and at
    most once every ``spacing`` seconds, so that churn costs the loop nearly nothing."""

    def __init__(
        self, wave: int = 20, delay: float = 1.0, spacing: float = 5.0, patience: float = 10.0
    ) -> None:
        self.wave = wave
        self.delay = delay
        self.spacing = spacing
        self.patience = patience
        self.trims = 0
        self._closed = 0
        self._first = self._latest = 0.0  # when the wave's first and latest close came
        self._last_trim = -spacing
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Closes counted since the latest trim (0 once a wave's trim has run)."""
        return self._closed

    def closed(self) -> None:
        """Count a closed connection (call it on the server's loop)."""
        now = time.monotonic()
        if self._closed == 0:
            self._first = now
        self._closed += 1
        self._latest = now
        # A wave's stragglers (closes that finish after its trim: a busy loop still working
        # through their last data) get a trim of their own, spaced like any other.
        straggler = self.trims > 0 and now - self._last_trim < self.patience
        if (self._closed >= self.wave or straggler) and self._timer is None and _TRIM is not None:
            self._schedule(max(self.delay, self._last_trim + self.spacing - now))

    def _schedule(self, wait: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(wait, self._trim)

    def _trim(self) -> None:
        now = time.monotonic()
        if now - self._latest < self.delay and now - self._first < self.patience:
            self._schedule(self.delay)  # the wave is still coming in: wait for it to settle
            return
        self._timer = None
        self._closed = 0
        self._last_trim = now
        gc.collect()  # frees the closed connections' buffers, held in reference cycles
        release_memory()
        self.trims += 1

    def cancel(self) -> None:
        """Forget a trim still to come (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
