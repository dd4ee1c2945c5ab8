"""Issue 14's adversarial probes against a real server: bad handshakes (item 1), stopping
while clients misbehave (2), chat text and lone surrogates (6), HTTP methods (7), logs (8).

Connection limits, memory and joins (items 3 to 5) are in test_limits.py.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from workshop_lib import start_server
from workshop_lib.clients.raw import RawClient
from workshop_lib.server.logs import Tally

from .conftest import ROOM_TOKEN

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def raw_http(port: int, request: str | bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is; read until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode("latin-1") if isinstance(request, str) else request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.INFO, logger="workshop_lib")
    return caplog


def problems(caplog) -> list[str]:
    """Records a probe must never cause: tracebacks and errors, the server's or websockets'."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


# -- item 1: malformed handshakes get a status and one line, never a 500 ----------------------


@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        (
            f"Authorization: Bearer {ROOM_TOKEN}\r\nAuthorization: Bearer {ROOM_TOKEN}\r\n",
            400,
            b"one Authorization",
        ),
        ("Origin: http://127.0.0.1\r\nOrigin: http://127.0.0.1\r\n", 400, b"one Origin"),
        ("Origin: http://[127.0.0.1\r\n", 400, b"is not an origin"),
        ("Origin: http://localhost:port\r\n", 400, b"is not an origin"),
        ("Host: a\r\n", 400, b"one Host"),  # a second Host header
    ],
)
def test_malformed_handshakes_get_a_4xx_and_one_log_line(room, server_log, extra, status, says):
    got, _, body = raw_http(room.port, UPGRADE.format(path="/echo") + extra + "\r\n")
    assert got == status and says in body
    assert problems(server_log) == []
    assert len(refusal_lines(server_log)) == 1, refusal_lines(server_log)
    # and nobody else noticed
    with connect(room.links.ws("/echo"), additional_headers=room.auth_headers) as websocket:
        websocket.send("fine")
        assert websocket.recv(timeout=5) == "fine"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/static/a%00b.js", 400),  # a NUL byte, escaped
        ("/static/a\x00b.js", 400),  # and raw
        ("/static/%1b[31m.css", 400),
        ("/static/" + "a" * 300 + ".js", 404),  # longer than any file name may be
        ("//[x", 404),  # urlsplit() reads an address here, and raises
        ("//[x?token=1", 404),
    ],
)
def test_odd_static_paths_get_a_4xx_without_traceback(server, server_log, path, status):
    got, _, _ = raw_http(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got == status
    assert problems(server_log) == []
    assert len(refusal_lines(server_log)) == (1 if status == 400 else 0)


def test_an_auth_event_with_a_lone_surrogate_is_a_wrong_token(room, server_log):
    headers = {"Origin": f"http://127.0.0.1:{room.port}"}  # a browser: auth by first message
    with connect(room.links.ws("/echo"), additional_headers=headers, open_timeout=5) as ws:
        ws.send('{"type": "auth", "token": "\\ud800"}')  # valid JSON, valid UTF-8
        assert json.loads(ws.recv(timeout=5))["code"] == "unauthorized"  # in band first
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4001
    assert problems(server_log) == []


# -- item 2: stopping never waits for what clients are doing ---------------------------------


def test_stop_cuts_half_sent_handshakes_and_clients_that_never_read(server_log):
    server = start_server(port=0, name="stop-probe")
    try:
        half = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        half.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        stalled = RawClient("127.0.0.1", server.port, "/ball", receive_buffer=4096)
        # Wait until the stalled client's buffers are full: its close frame cannot get out.
        ball = server.lesson("ball")
        deadline = time.monotonic() + 10
        while ball.frames_skipped == 0:
            assert time.monotonic() < deadline, "the stalled client never fell behind"
            time.sleep(0.02)
        assert server.app.connections.pending()  # the half handshake is there, waiting
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
    finally:
        server.stop()
    assert took < 2, f"stop() took {took:.2f} s"
    try:
        answer = half.recv(100)
    except ConnectionResetError:
        answer = b""
    assert answer == b""  # cut, not answered (a 503 would be an answer)
    assert problems(server_log) == []
    stalled.sock.close()
    half.close()


# -- item 6: chat text, and lone surrogates on every event path ------------------------------


@contextmanager
def chat_member(server, name: str) -> Iterator[ClientConnection]:
    with connect(server.links.ws("/chat"), open_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "chat.join", "name": name}))
        while json.loads(websocket.recv(timeout=5))["type"] != "chat.joined":
            pass
        yield websocket


@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 byte",
        "\x1b[31mred\x1b[0m",  # ANSI escape
        "abc \u202edesrever",  # right-to-left override
        "isolate \u2067x\u2069",
        "one\u2028line",  # line separator
        "carriage\rreturn",
        "\x9b31m",  # C1 CSI
    ],
)
def test_chat_texts_with_controls_are_refused_with_an_error(server, text):
    with chat_member(server, "ada") as ada:
        ada.send(json.dumps({"type": "chat.send", "text": text}))
        error = json.loads(ada.recv(timeout=5))
        assert error["type"] == "error" and error["code"] == "bad_value"
        assert "control characters" in error["message"]
        ada.send(json.dumps({"type": "chat.send", "text": "still here"}))
        assert json.loads(ada.recv(timeout=5))["text"] == "still here"


@pytest.mark.parametrize(
    "text",
    [
        "two\nlines",
        "tab\tstop",
        "ñ 中文 العربية",
        "👩\u200d💻 and 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    ],
)
def test_chat_texts_keep_newlines_and_ordinary_unicode(server, text):
    with chat_member(server, "ada") as ada:
        ada.send(json.dumps({"type": "chat.send", "text": text}))
        assert json.loads(ada.recv(timeout=5))["text"] == text


@pytest.mark.parametrize(
    ("path", "event"),
    [
        ("/chat", '{"type": "chat.join", "name": "ada\\ud800"}'),
        ("/chat", '{"type": "chat.send", "text": "half \\udc00 a character"}'),
        ("/ball", '{"type": "ball.control", "color": "\\ud83d"}'),
        ("/ball", '{"type": "ball.kick", "\\ud800": 1}'),  # in a key, too
    ],
)
def test_a_lone_surrogate_is_refused_on_every_event_path(server, server_log, path, event):
    with connect(server.links.ws(path), open_timeout=5) as websocket:
        websocket.send(event)
        while (answer := json.loads(websocket.recv(timeout=5)))["type"] != "error":
            assert answer["type"] == "ball.state"
        assert answer["code"] == "bad_value" and "surrogate" in answer["message"]
        websocket.send('{"type": "heartbeat"}')
        while json.loads(websocket.recv(timeout=5))["type"] != "heartbeat":
            pass
    assert problems(server_log) == []


# -- item 7: HEAD and other methods ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/main.js", "/healthz", "/nope"])
def test_head_answers_the_get_headers_without_a_body(server, path):
    get_status, get_headers, get_body = raw_http(
        server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    status, headers, body = raw_http(server.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == get_status
    assert body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert headers["Content-Type"] == get_headers["Content-Type"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_other_methods_get_405_with_allow(server, method):
    status, headers, body = raw_http(server.port, f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert method.encode() in body and b"<title>" not in body


def test_a_websocket_upgrade_must_be_a_get(server):
    status, headers, _ = raw_http(
        server.port, UPGRADE.replace("GET", "POST").format(path="/echo") + "\r\n"
    )
    assert status == 405 and headers["Allow"] == "GET"


# -- item 8: one line per event, floods as a count ----------------------------------------------


def test_a_connection_is_one_line_in_the_log(server, server_log):
    with connect(server.links.ws("/echo"), open_timeout=5) as websocket:
        websocket.send("x")
        websocket.recv(timeout=5)
        port = websocket.local_address[1]
    deadline = time.monotonic() + 5
    while not (
        mine := [m for m in (r.getMessage() for r in server_log.records) if f":{port} " in m]
    ):
        assert time.monotonic() < deadline, "no line for the connection"
        time.sleep(0.02)
    assert len(mine) == 1
    assert "connected to /echo, left /echo after" in mine[0] and "close code 1000" in mine[0]


def test_a_flood_of_refusals_is_summarised():
    records: list[str] = []
    logger = logging.getLogger("workshop_lib.test.tally")
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    now = [100.0]
    try:
        tally = Tally(logger, "connections refused", burst=5, window=10, clock=lambda: now[0])
        for i in range(412):
            now[0] = 100 + i * 0.01
            tally.log(
                logging.WARNING,
                "client %d refused",
                i,
                kind="per-address limit" if i % 2 else "server full",
            )
        assert len(records) == 5  # the first five, a line each; the rest wait for the window
        now[0] = 111.0
        tally.log(logging.WARNING, "client %d refused", 412, kind="server full")  # a new window
    finally:
        logger.removeHandler(handler)
    assert records[5] == (
        "412 connections refused in the last 10 s "
        "(5 shown above; server full 206, per-address limit 206)"
    )
    assert records[6] == "client 412 refused" and len(records) == 7


def test_refusals_on_a_real_server_are_a_few_lines_and_a_count(server_log):
    server = start_server(port=0, name="flood", max_per_address=1)
    try:
        with connect(server.links.ws("/echo"), open_timeout=5):
            for _ in range(30):
                status, headers, _ = raw_http(server.port, UPGRADE.format(path="/echo") + "\r\n")
                assert status == 429 and headers["Retry-After"]
    finally:
        server.stop()  # ends the window: the summary is written now
    lines = refusal_lines(server_log)
    assert len(lines) == 6, lines
    assert lines[-1].startswith(
        "30 connections refused in the last 10 s (5 shown above; per-address limit 30"
    )
