"""Small helpers several test modules share."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``condition`` (a thread-safe read) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Like :func:`wait_until`, but fail the test if ``condition`` never holds."""
    assert wait_until(condition, timeout), "condition not met in time"
