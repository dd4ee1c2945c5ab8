"""What every Redis-backed piece of a lesson shares: the client and its pool, the health row.

redis = open_client("redis://127.0.0.1:6379")   # redis.asyncio, patient with crowds
"""

from __future__ import annotations

from typing import Any

__all__ = ["POOL_SIZE", "POOL_WAIT", "open_client", "redis_health"]

POOL_SIZE = 32  # connections to Redis per client: one blocks in XREAD, the rest take turns
POOL_WAIT = 5.0  # seconds a command may wait for a free connection before it fails


def open_client(url: str, **options: Any) -> Any:
    """The course's ``redis.asyncio`` client for ``url``: quick to say Redis is away, quick to
    come back, and patient when many members arrive at once.

    After Redis was away, a pooled connection is dead: a command is tried again (twice, on a
    new connection) rather than reported failed to the member who sent it.
    """
    import redis.asyncio as aioredis  # only servers with Redis need redis-py
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # redis-py's default pool raises "Too many connections" past 100 commands in flight, which
    # a flood of 200 joins on one process reaches: half of them were told Redis was away. A
    # blocking pool makes the 101st command wait for a free connection instead; a command
    # that waits POOL_WAIT seconds is reported (Redis is then really stuck or away).
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.2), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **options,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


def redis_health(ok: bool | None) -> dict[str, str]:
    """What a lesson's ``health()`` and ``stats()`` say of its Redis (nothing without one)."""
    return {} if ok is None else {"redis": "ok" if ok else "unreachable"}
