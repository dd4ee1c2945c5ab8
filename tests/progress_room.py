"""The instructor's room for tests: ``python -m workshop_lib serve`` with a token and a key,
in a subprocess, its log kept (tests look for what must never be in it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

from workshop_lib.server.ports import free_port

TOKEN = "learners-token-for-tests"
KEY = "instructor-key-for-tests"


def announce(watch_url: str, text: str, key: str = KEY) -> None:
    """What the room page's form sends, from Python: ``text`` to everyone (an empty one takes
    the announcement down), through ``watch_url`` (a room's ``/progress/watch``); returns once
    the room has taken it."""
    with connect(watch_url, additional_headers={"Authorization": f"Bearer {key}"}) as watch:
        watch.recv(5)  # the snapshot
        watch.send(json.dumps({"type": "progress.announce", "text": text}))
        while json.loads(watch.recv(5))["type"] != "progress.announcement":
            pass


@dataclass
class Room:
    """``serve --token TOKEN --instructor-key KEY -v`` on ``port``: ``log()`` is its log
    records (stderr), ``banner()`` what it printed for the instructor (stdout)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    output: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    printed: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".out")[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Room:
        with self.output.open("ab") as err, self.printed.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    "-m",
                    "workshop_lib",
                    "serve",
                    "--port",
                    str(self.port),
                    "--token",
                    TOKEN,
                    "--instructor-key",
                    KEY,
                    "--verbose",
                    "--exit-with-parent",
                ],
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return self
            except OSError:
                assert self.process.poll() is None, self.log()
                time.sleep(0.1)
        raise TimeoutError(f"serve did not answer within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def banner(self) -> str:
        return self.printed.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, credential: str | None = KEY) -> tuple[int, str]:
        """``GET path`` with ``Authorization: Bearer credential``: status and body."""
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()

    def progress(self) -> dict:
        status, body = self.get("/api/progress")
        assert status == 200, body
        return json.loads(body)

    def row(self, name: str) -> dict:
        """One learner's exercises on the board ({} while not there)."""
        for learner in self.progress()["learners"]:
            if learner["name"] == name:
                return learner
        return {}
