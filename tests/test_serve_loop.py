"""`serve --loop`: the server process on uvloop when asked, a notebook's servers on asyncio's."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from websockets.sync.client import connect

from workshop_lib import start_server
from workshop_lib.server.processes import ServerProcess


def test_serve_runs_on_uvloop_when_asked_and_says_so():
    with ServerProcess(args=["--loop", "uvloop"]) as server:
        with connect(server.ws("/echo"), proxy=None, open_timeout=10) as websocket:
            websocket.send("hi")
            assert websocket.recv(timeout=10) == "hi"
        assert "  event loop: uvloop" in server.output


def test_an_in_process_server_keeps_asyncios_loop():
    server = start_server(port=0, name="loop-kind")
    try:

        async def kind() -> str:
            return type(asyncio.get_running_loop()).__module__

        assert server.run(kind()).startswith("asyncio")
    finally:
        server.stop()


def test_an_unknown_loop_is_refused_by_argparse():
    done = subprocess.run(
        [sys.executable, "-m", "workshop_lib", "serve", "--loop", "trio"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "invalid choice: 'trio'" in done.stderr
