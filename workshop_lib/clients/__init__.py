"""Python clients the lessons, the checks and the command line use.

``reading.py`` a JSON-event client that reads on its own thread (the lessons' clients build on
it); ``raw.py`` a client with no manners, for the exercises that break the rules;
``round_trip.py`` send, wait for the reply, time it, show the handshake; ``backoff.py`` the
reconnect schedule; ``proxies.py`` which connections may go through the system's proxy.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["RawClient", "ReadingClient", "backoff_delays"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "RawClient": ".raw",
        "ReadingClient": ".reading",
        "backoff_delays": ".backoff",
    },
)
