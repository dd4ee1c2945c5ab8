"""One port: the browser client over HTTP, the echo over WebSocket, clear answers to bad input."""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections.abc import Mapping

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from workshop_lib import start_server
from workshop_lib.clients.raw import RawClient
from workshop_lib.lesson import Handler, Lesson


def get(server, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


# -- HTTP --------------------------------------------------------------------------------------


def test_root_serves_the_browser_client(server):
    response = get(server, "/")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b"<title>" in response.body and b"main.js" in response.body
    # Exactly one Content-Length, matching the body: browsers refuse two.
    assert response.headers.get_all("Content-Length") == [str(len(response.body))]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/static/main.js", "text/javascript"), ("/static/style.css", "text/css")],
)
def test_static_files_have_the_right_type(server, path, content_type):
    response = get(server, path)
    assert response.status == 200
    assert response.getheader("Content-Type").startswith(content_type)
    assert response.getheader("Cache-Control") == "no-cache"
    assert len(response.body) > 0


@pytest.mark.parametrize(
    "path", ["/static/../pyproject.toml", "/static/%2e%2e/pyproject.toml", "/static/nope.js"]
)
def test_static_refuses_missing_files_and_paths_outside_static(server, path):
    response = get(server, path)
    assert response.status == 404
    assert b"[project]" not in response.body


def test_healthz(server):
    response = get(server, "/healthz")
    assert response.status == 200
    health = json.loads(response.body)
    assert health["status"] == "ok" and health["server"] == "workshop_lib"
    assert "/echo" in health["routes"]


def test_unknown_http_path_is_a_clear_404(server):
    response = get(server, "/nope?x=1")
    assert response.status == 404
    assert b"Not found: /nope" in response.body and b"/healthz" in response.body


def test_unknown_websocket_path_is_a_clear_404(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(server.links.ws("/nope"), open_timeout=5)
    assert refused.value.response.status_code == 404
    assert b"Endpoints on this server: /, /ball, /chat, /echo" in refused.value.response.body


# -- echo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/echo", "/echo?client=test"])
def test_echo_keeps_text_as_text_and_binary_as_binary(server, path):
    with connect(server.links.ws(path), open_timeout=5) as websocket:
        websocket.send("héllo ✓")
        assert websocket.recv(timeout=5) == "héllo ✓"
        websocket.send(b"\x00\xffbinary")
        assert websocket.recv(timeout=5) == b"\x00\xffbinary"


def test_echo_keeps_order_and_serves_clients_independently(server):
    with connect(server.links.ws("/echo")) as a, connect(server.links.ws("/echo")) as b:
        for i in range(50):
            a.send(f"a{i}")
            b.send(f"b{i}")
        assert [a.recv(timeout=5) for _ in range(50)] == [f"a{i}" for i in range(50)]
        assert [b.recv(timeout=5) for _ in range(50)] == [f"b{i}" for i in range(50)]


def test_a_message_over_the_size_limit_closes_with_1009(server):
    with connect(server.links.ws("/echo"), max_size=None) as websocket:
        websocket.send("x" * (64 * 1024 + 1))
        # Said in band first (a proxy may not pass the close code on), then the close.
        refusal = json.loads(websocket.recv(timeout=5))
        assert refusal["code"] == "message_too_big" and refusal["close"] == 1009
        assert "65536" in refusal["message"]
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=5)
    assert closed.value.rcvd.code == 1009


# -- bad clients: the right close code, no traceback, no harm to others ------------------------


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.DEBUG, logger="workshop_lib")
    return caplog


def assert_no_tracebacks(caplog):
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def test_invalid_utf8_closes_with_1007_and_no_traceback(server, server_log):
    with connect(server.links.ws("/echo")) as bystander:
        raw = RawClient("127.0.0.1", server.port, "/echo")
        assert b" 101 " in raw.response
        raw.send_frame(Opcode.TEXT, b"\xff\xfe not utf-8")
        assert raw.close_code() == 1007
        bystander.send("still here")
        assert bystander.recv(timeout=5) == "still here"
    assert_no_tracebacks(server_log)


def test_protocol_violation_closes_with_1002_and_no_traceback(server, server_log):
    raw = RawClient("127.0.0.1", server.port, "/echo")
    raw.sock.sendall(b"\x81\x05hello")  # an unmasked client frame: forbidden by RFC 6455
    assert raw.close_code() == 1002
    assert_no_tracebacks(server_log)


def test_a_client_that_vanishes_leaves_no_traceback(server, server_log):
    raw = RawClient("127.0.0.1", server.port, "/echo")
    raw.send_frame(Opcode.TEXT, b"half a conversation")
    raw.vanish()
    with connect(server.links.ws("/echo")) as websocket:
        websocket.send("after")
        assert websocket.recv(timeout=5) == "after"
    assert_no_tracebacks(server_log)


def test_a_failing_handler_closes_with_1011_and_logs_why(server, server_log):
    async def broken(websocket):
        async for message in websocket:
            await websocket.send(message + 1)

    server.route("/broken", broken)
    with connect(server.links.ws("/broken")) as websocket:
        websocket.send("x")
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=5)
    assert closed.value.rcvd.code == 1011
    assert closed.value.rcvd.reason == "handler failed: TypeError"
    failures = [r for r in server_log.records if r.getMessage() == "handler for /broken failed"]
    assert failures and failures[0].exc_info[0] is TypeError


def test_stopping_the_server_closes_clients_with_1001(server):
    with connect(server.links.ws("/echo")) as websocket:
        server.stop()
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=5)
    assert closed.value.rcvd.code == 1001


def test_client_counts_follow_connections(server):
    with connect(server.links.ws("/echo")) as websocket:
        websocket.send("x")
        websocket.recv(timeout=5)
        assert server.app.clients["/echo"] == 1
    for _ in range(50):
        if server.app.clients["/echo"] == 0:
            break
        time.sleep(0.02)
    assert server.app.clients["/echo"] == 0


def test_stats_count_clients_connections_and_messages(server):
    import json as _json
    import urllib.request

    from websockets.sync.client import connect

    def stats():
        with urllib.request.urlopen(server.links.url("/api/stats"), timeout=5) as response:
            assert response.headers["Cache-Control"] == "no-store"
            return _json.load(response)

    before = stats()
    assert before["clients"] == {}
    assert before["chat"] == {"members": 0, "messages": 0, "never_joined": 0}
    with connect(server.links.ws("/chat")) as websocket:
        websocket.send('{"type": "chat.join", "name": "ada"}')
        websocket.send('{"type": "chat.send", "text": "one"}')
        websocket.send('{"type": "chat.send", "text": "two"}')
        for _ in range(4):  # welcome, joined, two messages
            websocket.recv(timeout=5)
        during = stats()
    assert during["clients"] == {"/chat": 1}
    assert during["connections"]["/chat"] == 1
    assert during["chat"] == {"members": 1, "messages": 2, "never_joined": 0}
    assert during["ball"]["tick"] >= before["ball"]["tick"] >= 0  # ticks: 60 a second


# -- the route, resolved once per connection ---------------------------------------------------


class KeyedEcho(Lesson):
    """An echo whose clients bring their key in a header of its own, and speak a subprotocol."""

    name = "keyed"
    subprotocols = ("echo.v2", "echo.v1")

    def __init__(self) -> None:
        self.asked = 0  # how often the server asked this lesson where a request's key is

    def websocket_routes(self) -> Mapping[str, Handler]:
        return {"/keyed": self.echo}

    def credential(self, request: Request) -> str | None:
        self.asked += 1
        return request.headers.get("X-Key")

    async def echo(self, websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)


def test_a_connection_is_routed_once_and_every_step_reads_that_route():
    """The path is looked up at the handshake, once: the subprotocol, the login (the key the
    lesson found in its header: no auth event needed) and the handler all follow that."""
    lesson = KeyedEcho()
    name = f"routed-{uuid.uuid4().hex[:8]}"
    with start_server(port=0, name=name, token="sesame", lessons=[lesson]) as server:
        for n in range(1, 4):
            with connect(
                server.links.ws("/keyed?client=test"),
                additional_headers={"X-Key": "sesame"},
                subprotocols=[Subprotocol("echo.v1")],
                open_timeout=5,
            ) as websocket:
                assert websocket.subprotocol == "echo.v1"
                websocket.send("hi")
                assert websocket.recv(timeout=5) == "hi"  # no auth event was asked for
            assert lesson.asked == n  # one look at the request per connection
