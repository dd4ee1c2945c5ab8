"""Workshop servers in processes of their own: lesson 06's "many processes", for real.

    with ServerProcess(redis=redis.url) as one, ServerProcess(redis=redis.url) as two:
        ChatClient([one.ws("/chat"), two.ws("/chat")], "ada")
        one.kill()            # as a crash: no goodbye, its clients reconnect to `two`

Each is ``python -m workshop_lib serve --port 0`` (plus ``--redis URL``), exactly what an
instructor runs in a terminal; its output is kept (``output``), never printed into a cell.
None outlives the Python that started it: each is started with ``--exit-with-parent`` (it
stops when its parent ends, even killed), and :meth:`ServerProcess.stop_all` stops every
one this Python started, also those of a cell that was run twice.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any, ClassVar

from ..app.links import Links, detect_proxy
from ..lesson import Page
from . import first_use

__all__ = ["ServerProcess"]

# The echo's address, which serve prints as programs on this machine reach it: direct even
# behind a hub, where the page links it prints go through Jupyter's proxy instead.
_ADDRESS = re.compile(r"ws://127\.0\.0\.1:(\d+)/")


class ServerProcess:
    """One ``serve`` child process on 127.0.0.1 and a free port (or ``port``)."""

    started: ClassVar[list[ServerProcess]] = []  # every one this Python started: stop_all()

    def __init__(
        self, *, port: int = 0, redis: str | None = None, args: Sequence[str] = ()
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "workshop_lib",
            "serve",
            "--port",
            str(port),
            "--exit-with-parent",
            *(["--redis", redis] if redis else []),
            *args,
        ]
        self.port = port
        self.process: subprocess.Popen[str] | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=200)

    # -- addresses -------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def links(self) -> Links:
        """Its addresses as a server's are: ``links.page("ball")`` is what a browser opens
        (through Jupyter's proxy on a hub, see docs/hubs.md)."""
        listed: Any = self.health().get("pages", ())
        pages = tuple(Page(page["name"], page["title"], page["module"]) for page in listed)
        return Links("127.0.0.1", self.port, pages=pages, proxy=detect_proxy())

    def ws(self, path: str = "/") -> str:
        """The WebSocket address of ``path`` on this process, e.g. ``ws://127.0.0.1:PORT/chat``."""
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Start it and wait until its ``/healthz`` answers with its own pid."""
        if self.running:  # a second start would leave the first process running, unowned
            raise RuntimeError(f"{self!r} is running already: stop() it first")
        first_use.set_up()  # lesson 06 starts no server in the notebook: this is its first
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        if self not in ServerProcess.started:
            ServerProcess.started.append(self)
        found = threading.Event()
        threading.Thread(target=self._drain, args=(found,), daemon=True).start()
        if not found.wait(timeout):
            self.kill()
            raise TimeoutError(
                f"the server process printed no address within {timeout:g} s:\n"
                + "\n".join(self.output)
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health().get("pid") == self.pid:
                return self
            time.sleep(0.05)  # it printed its address; its loop is a moment away
        self.kill()
        raise TimeoutError(f"port {self.port} did not answer /healthz for process {self.pid}")

    def _drain(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:  # read it all: a full pipe would stall the server
            self.output.append(line.rstrip("\n"))
            match = _ADDRESS.search(line)
            if match and not found.is_set():
                self.port = int(match.group(1))
                found.set()

    def health(self) -> dict[str, object]:
        """Its ``/healthz`` (empty if it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as reply:
                return json.loads(reply.read())
        except (OSError, ValueError):
            return {}

    def stats(self) -> dict[str, object]:
        """Its ``/api/stats``."""
        with urllib.request.urlopen(f"{self.http_url}/api/stats", timeout=5) as reply:
            return json.loads(reply.read())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far (Linux)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """End it at once, as a crash would: no close frames, no goodbye to Redis."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it as Ctrl-C would: clients get 1001, then it exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    @classmethod
    def stop_all(cls, timeout: float = 10.0) -> int:
        """Stop every server process this Python started that still runs (as Ctrl-C
        would); how many that was."""
        running = [process for process in cls.started if process.running]
        for process in running:
            process.stop(timeout)
        cls.started = [process for process in cls.started if process.running]
        return len(running)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        # No URL: a notebook would show it as a link, which behind a hub leads nowhere.
        return f"<ServerProcess pid {self.pid} port {self.port} {state}>"


atexit.register(ServerProcess.stop_all, 3.0)  # a normal exit; --exit-with-parent for the rest
