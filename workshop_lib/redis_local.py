"""A redis-server of one's own, on a free port: for notebook 06, the tests and the benchmarks.

    with LocalRedis() as redis:            # starts Debian's (or any) redis-server
        start_server(lessons=default_lessons(chat={"redis": redis.url}))
    redis.stop() / redis.start()           # take it away and bring it back (same port)

By default nothing is saved to disk: a scratch server that lives as long as the object.
``LocalRedis(persist=True)`` keeps an append-only file (each write synced) in a temporary
folder, so a Redis that is killed and started again comes back with its data, as a
deployed one does.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, ClassVar

__all__ = [
    "LocalRedis",
    "RedisMissing",
    "cancel_tasks",
    "find_redis_server",
    "open_client",
    "redis_health",
]

POOL_SIZE = 32  # connections to Redis per client: one blocks in XREAD, the rest take turns
POOL_WAIT = 5.0  # seconds a command may wait for a free connection before it fails

INSTALL_HINT = (
    "Install it: `sudo apt-get install redis-server` (Debian, Ubuntu), `brew install redis` "
    "(macOS), `conda install -c conda-forge redis-server`, or run one with Docker: "
    "`docker run -p 6379:6379 redis` and pass redis://127.0.0.1:6379/0."
)


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

    A cancel can be lost: redis-py swallows a CancelledError that lands while a command is
    in flight (redis/redis-py#2028 and kin), and the task runs on into its next command. So
    each task is cancelled again until it ends, at most ``timeout`` seconds in all.
    """
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    for task in tasks:
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error on the way out is not news at a stop
    tasks.clear()


class RedisMissing(RuntimeError):
    """No redis-server program on this machine."""


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` program, or None."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dies_with_this_process() -> list[str]:
    """A prefix that makes a child get SIGKILL when this process ends, however it ends
    (Linux's parent-death signal, via util-linux's ``setpriv``), or none where there is
    no such thing. The signal follows the thread that starts the child, so only the main
    thread, which lives as long as the process, asks for it."""
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or setpriv is None:
        return []
    if threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


class LocalRedis:
    """A ``redis-server`` child process on 127.0.0.1 (``port=0``: a free one).

    It never outlives the Python that started it: stopped at a normal exit (a kernel's
    restart), and killed with it on Linux even when that Python is killed."""

    started: ClassVar[list[LocalRedis]] = []  # for the stop at exit

    def __init__(self, port: int = 0, binary: str | None = None, persist: bool = False) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RedisMissing(f"no redis-server on this machine. {INSTALL_HINT}")
        self.binary = found
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="workshop-redis-") if persist else None

    @property
    def url(self) -> str:
        """Where clients connect, e.g. ``redis://127.0.0.1:40123/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> LocalRedis:
        """Start it (again, on the same port) and wait until it answers PING."""
        if self.running:
            return self
        self.process = subprocess.Popen(
            [
                *_dies_with_this_process(),
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",  # no snapshots; with persist, the append-only file below
                "--protected-mode",
                "yes",
                *(
                    ["--dir", self._folder.name, "--appendonly", "yes", "--appendfsync", "always"]
                    if self._folder is not None
                    else ["--appendonly", "no"]
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if self not in LocalRedis.started:
            LocalRedis.started.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else b"").decode()
                raise RuntimeError(f"redis-server exited at once: {error.strip()[-500:]}")
            if self._pong():
                return self
            time.sleep(0.02)  # polling a starting process: there is no event to wait for
        self.stop()
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout:g} s")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it at once, as a crash would (its data goes with it)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._folder is not None:
            self._folder.cleanup()

    def __repr__(self) -> str:
        # No URL (a notebook would make it a link): the address, then .url for clients.
        return f"<LocalRedis 127.0.0.1:{self.port} {'running' if self.running else 'stopped'}>"


def _stop_all_at_exit() -> None:
    for server in LocalRedis.started:
        server.stop()


atexit.register(_stop_all_at_exit)
