"""How long to wait between reconnect attempts: exponential backoff with jitter.

When a server restarts, every client loses its connection at the same moment. Retrying on a
fixed schedule would bring them all back at once, again and again; doubling the wait spreads
the attempts over time, and a random ±20 % spreads clients that failed at the same instant.
The schedule is ``protocol.BACKOFF``; the browser client follows the same one
(``static/rules.js``, ``static/reconnect.js``)::

    for delay in backoff_delays():      # about 0.5, 1, 2, 4, 8, 10, 10, ... seconds
        time.sleep(delay)
        if try_to_connect():
            break

websockets' own ``async for websocket in connect(url)`` reconnects the same way, with
longer defaults meant for production services.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Iterator

from ..wire.protocol import BACKOFF

__all__ = ["backoff_delays"]


def backoff_delays(
    first: float = BACKOFF.first,
    factor: float = BACKOFF.factor,
    cap: float = BACKOFF.cap,
    jitter: float = BACKOFF.jitter,
    random: Callable[[], float] = _random.random,
) -> Iterator[float]:
    """Endless waits in seconds: ``first``, times ``factor`` each time, at most ``cap``.

    Each is scaled by a random factor in ``1 ± jitter`` (and still at most ``cap``).
    """
    exact = first
    while True:
        yield min(cap, exact * (1 + jitter * (2 * random() - 1)))
        exact = min(cap, exact * factor)
