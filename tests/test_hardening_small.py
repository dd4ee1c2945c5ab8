"""The smaller findings of the third hardening pass: /ball's rate limit, symbolic links out
of static/, the 405 page, the fragment-flood event, deep JSON, credentials in the debug log."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from workshop_lib import start_server
from workshop_lib.app.app import App
from workshop_lib.clients.raw import RawClient
from workshop_lib.server.logs import WEBSOCKETS_LOGGER_NAME
from workshop_lib.wire.protocol import ProtocolError, parse_event

from .helpers import wait_for
from .test_hardening import raw_http


@pytest.fixture
def server():
    with start_server(port=0, name=f"small-{uuid.uuid4().hex[:8]}") as running:
        yield running


def test_a_ball_control_flood_is_refused_then_closed_with_4029(server):
    with connect(server.links.ws("/ball"), open_timeout=5) as ws:
        control = json.dumps({"type": "ball.control", "speed": 1.0})
        # The server may close before the last of these is sent: that is the point.
        with contextlib.suppress(ConnectionClosed):
            for _ in range(200):
                ws.send(control)
        codes = []
        deadline = time.monotonic() + 10  # the ball's frames keep coming: a deadline
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() < deadline:
                event = json.loads(ws.recv(timeout=5))
                if event.get("type") == "error":
                    codes.append(event["code"])
    assert "rate_limited" in codes
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029


def test_a_ball_client_at_a_sliders_pace_is_not_limited(server):
    with connect(server.links.ws("/ball"), open_timeout=5) as ws:
        for speed in range(50):  # a burst of slider input events
            ws.send(json.dumps({"type": "ball.control", "speed": 1 + speed / 100}))
        ws.send(json.dumps({"type": "heartbeat"}))
        while (event := json.loads(ws.recv(timeout=5)))["type"] != "heartbeat":
            assert event["type"] != "error", event


def test_symbolic_links_do_not_lead_out_of_static(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<p>home</p>")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("the secret")
    (static / "file-link.txt").symlink_to(secret / "key.txt")
    (static / "folder-link").symlink_to(secret)
    (static / "inside.html").symlink_to(static / "index.html")  # inside: still served

    app = App(static=static)
    server = start_server(port=0, name=f"small-{uuid.uuid4().hex[:8]}")
    server.app.static = app.static
    try:
        for path in ("/static/file-link.txt", "/static/folder-link/key.txt"):
            status, _, body = raw_http(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 404 and b"secret" not in body, (path, status)
        status, _, body = raw_http(
            server.port, "GET /static/inside.html HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert status == 200 and body == b"<p>home</p>"
    finally:
        server.stop()


def test_the_405_page_does_not_echo_a_long_method(server):
    method = "X" * 5000
    status, _, body = raw_http(server.port, f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status in (400, 405)
    assert len(body) < 300 and b"X" * 21 not in body


def test_a_fragment_flood_is_explained_as_a_message_in_fragments(server):
    client = RawClient("127.0.0.1", server.port, "/echo")
    client.sock.sendall(
        Frame(Opcode.TEXT, b"a" * 10, fin=False).serialize(mask=True, extensions=[])
    )
    tiny = Frame(Opcode.CONT, b"b" * 100, fin=False).serialize(mask=True, extensions=[])
    client.sock.sendall(tiny * 1000)
    event = json.loads(client.read_frame().data)
    assert event["code"] == "message_too_big"
    assert "fragments" in event["message"] and "frame with" not in event["message"]
    client.sock.close()


def test_deep_json_with_an_escape_is_not_blamed_on_a_surrogate():
    deep = '{"type": "ping", "x": ' + "[" * 900 + '"\\u0041"' + "]" * 900 + "}"
    assert parse_event(deep, {"ping"})["type"] == "ping"  # valid, if odd: no surrogate in it
    with pytest.raises(ProtocolError) as refused:
        parse_event('{"type": "ping", "x": ' + "[" * 900 + '"\\ud800"' + "]" * 900 + "}", {"ping"})
    assert "surrogate" in str(refused.value)


@pytest.mark.parametrize(
    "headers",
    [
        {"api-key": "wrong-key-4242"},
        {"Sec-WebSocket-Protocol": "realtime, openai-insecure-api-key.wrong-key-4242"},
    ],
)
def test_a_wrong_key_is_not_quoted_in_the_debug_log(headers, caplog):
    websockets_logger = logging.getLogger(WEBSOCKETS_LOGGER_NAME)
    caplog.set_level(logging.DEBUG, logger=WEBSOCKETS_LOGGER_NAME)
    with start_server(port=0, name=f"small-{uuid.uuid4().hex[:8]}", token="right-token-1") as srv:
        RawClient("127.0.0.1", srv.port, "/echo", headers=headers).sock.close()
    assert websockets_logger.level == logging.DEBUG
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "[redacted]" in logged  # the header was logged: without its value
    assert "wrong-key-4242" not in logged


@pytest.mark.parametrize("after", [b"\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_a_request_followed_by_more_bytes_is_still_answered(server, after):
    """An extra CRLF, or a second pipelined request: the first is answered (with
    ``Connection: close``, so a client knows to send the second again)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = raw_http(server.port, request + after)
    assert status == 200 and headers.get("Connection") == "close"
    assert json.loads(body)["status"] == "ok"


def test_a_client_that_sends_bytes_and_leaves_before_its_answer_costs_nothing(server):
    import socket

    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            sock.recv(100)
    wait_for(lambda: not server.app.connections.all)
