"""`python -m workshop_lib serve` and `... client echo`, run as a learner runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.sync.client import connect

from workshop_lib.clients.raw import RawClient
from workshop_lib.server.ports import free_port, port_is_free


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workshop_lib", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Served:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process, self.port = process, port
        self.banner = ""

    @property
    def echo_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/echo"

    def interrupt(self) -> tuple[str, str, float]:
        """Press Ctrl-C; return stdout, stderr and how long stopping took."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=10)
        return self.banner + out, err, time.perf_counter() - started


@pytest.fixture
def served() -> Iterator[Served]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "workshop_lib", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    served = Served(process, port)
    # The banner's last line says the server is ready.
    deadline = time.monotonic() + 20
    while "Echo WebSocket" not in served.banner and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        served.banner += line
    assert "Echo WebSocket" in served.banner, process.stderr.read() if process.poll() else ""
    try:
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_help_explains_both_commands():
    top = cli("--help")
    assert top.returncode == 0
    assert "serve" in top.stdout and "client" in top.stdout
    serve = cli("serve", "--help")
    assert "--host" in serve.stdout and "--port" in serve.stdout and "Ctrl-C" in serve.stdout
    assert "--max-connections" in serve.stdout and "--max-per-address" in serve.stdout
    echo = cli("client", "echo", "--help")
    assert "MESSAGE" in echo.stdout and "--url" in echo.stdout


def test_serve_prints_working_links_and_ctrl_c_stops_within_two_seconds(served):
    assert f"http://127.0.0.1:{served.port}/" in served.banner
    assert f"http://127.0.0.1:{served.port}/#echo" in served.banner
    assert f"http://127.0.0.1:{served.port}/#room" in served.banner  # for the projector
    with connect(served.echo_url, open_timeout=5) as websocket:
        websocket.send("before ctrl-c")
        assert websocket.recv(timeout=5) == "before ctrl-c"
        out, err, seconds = served.interrupt()
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=5)
    assert closed.value.rcvd.code == 1001
    assert seconds < 2, f"stopping took {seconds:.2f} s"
    assert served.process.returncode == 0
    assert "Stopped." in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert port_is_free("127.0.0.1", served.port)


def test_ctrl_c_while_a_handshake_is_half_sent_exits_0_at_once(served):
    half = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    half.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    stalled = RawClient("127.0.0.1", served.port, "/ball", receive_buffer=4096)  # never reads
    # The server answers in order: once this one is answered, it holds the two above.
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/healthz", timeout=5):
        pass
    out, err, seconds = served.interrupt()
    assert served.process.returncode == 0, err
    assert seconds < 2.5, f"stopping took {seconds:.2f} s"
    assert "Traceback" not in err and "Stopped." in out
    half.close()
    stalled.sock.close()


def test_limits_can_be_set_on_the_command_line():
    result = cli("serve", "--max-per-address", "-1")
    assert result.returncode == 2 and "is not a number of connections" in result.stderr


def test_bad_clients_leave_no_traceback_in_the_terminal(served):
    raw = RawClient("127.0.0.1", served.port, "/echo")
    raw.send_frame(Opcode.TEXT, b"\xff not utf-8")
    assert raw.close_code() == 1007
    RawClient("127.0.0.1", served.port, "/echo").vanish()
    with connect(served.echo_url, open_timeout=5) as websocket:
        websocket.send("fine")
        assert websocket.recv(timeout=5) == "fine"
    _, err, _ = served.interrupt()
    assert "Traceback" not in err, err
    assert "connected to /echo" in err  # the log itself does go to the terminal


def test_client_echo_prints_replies_with_round_trips(served):
    result = cli("client", "echo", "hello", "wörld", "--url", served.echo_url, "--handshake")
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 101 Switching Protocols" in result.stdout
    replies = [line for line in result.stdout.splitlines() if line.endswith(" ms)")]
    assert [r.split()[0] for r in replies] == ["hello", "wörld"]


def test_serve_on_a_busy_port_fails_with_a_clear_message(served):
    result = cli("serve", "--port", str(served.port))
    assert result.returncode == 1
    assert f"port {served.port} is already in use" in result.stderr
    assert "another workshop server" in result.stderr
    assert "Traceback" not in result.stderr


def test_client_without_a_server_says_how_to_start_one():
    result = cli("client", "echo", "hi", "--url", f"ws://127.0.0.1:{free_port()}/echo")
    assert result.returncode == 1
    assert "no server at" in result.stderr and "python -m workshop_lib serve" in result.stderr
    assert "Traceback" not in result.stderr


def test_client_on_a_wrong_path_shows_the_servers_answer(served):
    result = cli("client", "echo", "hi", "--url", f"ws://127.0.0.1:{served.port}/nope")
    assert result.returncode == 1
    assert "(404)" in result.stderr and "Endpoints on this server" in result.stderr


def test_client_rejects_a_url_that_is_not_a_websocket_url():
    result = cli("client", "echo", "hi", "--url", "http://127.0.0.1:1/echo")
    assert result.returncode == 2
    assert "ws://" in result.stderr
