"""What every Redis-backed piece of a lesson shares: the client and its pool, the health row.

redis = open_client("redis://127.0.0.1:6379")   # redis.asyncio, patient with crowds
"""

from __future__ import annotations

from typing import Any

__all__ = ["POOL_SIZE", "POOL_WAIT", "cancel_tasks", "open_client", "redis_health"]

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


async def cancel_tasks(tasks: list[Any], timeout: float = 5.0) -> None:
    """Cancel a lesson's Redis tasks and wait until each has ended (the list is emptied).

    A cancel can be lost, and the task runs on into its next command. redis-py sends every
    command through ``asyncio.wait_for`` (its socket timeout), and on Python 3.11 that drops
    a cancel which lands after the send finished but before ``wait_for`` resumes; on a busy
    loop a cancel sent from a timer lands there every time, for seconds on end. So a task
    still running after a first cancel is cancelled again on each turn of the loop, which
    reaches it at another point, at most ``timeout`` seconds in all.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=min(0.1, timeout))
    while pending and loop.time() < deadline:
        for _turn in range(20):
            for task in pending:
                task.cancel()
            await asyncio.sleep(0)  # one turn of the loop
            pending = {task for task in pending if not task.done()}
            if not pending:
                break
        if pending:
            _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error on the way out is not news at a stop
    tasks.clear()
