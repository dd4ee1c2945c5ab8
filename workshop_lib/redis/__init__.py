"""Redis for the lessons that span processes.

``local.py`` a ``redis-server`` of one's own on a free port (notebook 06, tests, benchmarks);
``client.py`` what every Redis-backed piece shares: the client's pool, the health row.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["LocalRedis"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "LocalRedis": ".local",
    },
)
