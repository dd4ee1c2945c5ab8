"""Authentication and origins: by header, by first message, refused the right way."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request
from websockets.sync.client import connect

from workshop_lib import WorkshopServer, start_server
from workshop_lib.app.auth import (
    UNAUTHORIZED,
    Guard,
    RedactFilter,
    is_loopback,
    new_token,
    tokens_match,
)
from workshop_lib.server.handle import bearer
from workshop_lib.server.logs import WEBSOCKETS_LOGGER_NAME

from .helpers import wait_for
from .test_cli import cli, free_port

TOKEN = "correct-horse-battery"


@pytest.fixture
def guarded() -> Iterator[WorkshopServer]:
    """A server with a token, on a free port."""
    with start_server(port=0, name=f"auth-{uuid.uuid4().hex[:8]}", token=TOKEN) as running:
        yield running


def browser_like(server: WorkshopServer, path: str):
    """A client that connects as the server's own page does: with an Origin, no header."""
    return connect(server.links.ws(path), origin=server.http_url)


def request(path: str = "/echo", **headers: str) -> Request:
    return Request(path, Headers({k.replace("_", "-"): v for k, v in headers.items()}))


# -- units ------------------------------------------------------------------------------------


def test_tokens_match_only_exactly():
    assert tokens_match(TOKEN, TOKEN)
    assert not tokens_match(TOKEN[:-1], TOKEN)
    assert not tokens_match(TOKEN + "x", TOKEN)
    assert not tokens_match("", TOKEN)
    assert not tokens_match("correct-horse-battérie", TOKEN)  # non-ASCII: no TypeError


def test_new_tokens_are_random_and_url_safe():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 22 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_a_new_token_never_reads_as_a_command_line_option():
    # One token in 64 would start with "-" by chance; 2000 draws all but surely include some.
    assert not [t for t in (new_token() for _ in range(2000)) if t.startswith("-")]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("origin", "host", "loopback", "allowed"),
    [
        ("http://127.0.0.1:8765", "127.0.0.1:8765", True, True),  # its own page
        ("http://localhost:8888", "127.0.0.1:8765", True, True),  # JupyterLab's widgets
        ("https://evil.example", "127.0.0.1:8765", True, False),  # hijacking attempt
        ("http://evil.example:8765", "evil.example:8765", True, False),  # DNS rebinding
        ("null", "127.0.0.1:8765", True, False),  # a file:// page or sandboxed frame
        ("http://192.168.1.20:8765", "192.168.1.20:8765", False, True),  # the room's page
        ("http://192.168.1.99:8765", "192.168.1.20:8765", False, False),
        ("https://hub.example.org", "127.0.0.1:8765", True, True),  # allowed explicitly
    ],
)
def test_origin_rules(origin, host, loopback, allowed):
    guard = Guard(loopback=loopback, origins=["https://hub.example.org/"])
    assert guard.origin_allowed(origin, host) is allowed


def test_handshake_checks_refuse_with_a_reason():
    guard = Guard(TOKEN)
    status, text, _ = guard.check_handshake(request())  # a program without the header
    assert status == 401 and "Authorization: Bearer" in text
    # A browser (it sends an Origin) authenticates with its first message.
    assert guard.check_handshake(request(Origin="http://127.0.0.1:8765")) is None
    assert guard.check_handshake(request(Authorization=f"Bearer {TOKEN}")) is None
    status, text, _ = guard.check_handshake(request(Authorization="Bearer nope"))
    assert status == 401 and "Wrong token" in text
    status, _, _ = guard.check_handshake(request(Authorization=f"Basic {TOKEN}"))
    assert status == 401
    status, text, _ = guard.check_handshake(request(f"/echo?token={TOKEN}"))
    assert status == 400 and "logs" in text
    status, text, _ = guard.check_handshake(request(Origin="https://evil.example"))
    assert status == 403 and "https://evil.example" in text


def test_an_empty_token_is_refused():
    with pytest.raises(ValueError, match="new_token"):
        Guard("  ")


def test_redact_filter_hides_the_token_in_messages_and_arguments():
    record = logging.LogRecord("x", logging.INFO, "", 0, "< %s", (f"Bearer {TOKEN}",), None)
    assert RedactFilter(TOKEN).filter(record)
    assert record.getMessage() == "< Bearer [token]"


# -- on the network ---------------------------------------------------------------------------


def test_header_auth_lets_a_python_client_in(guarded):
    with connect(guarded.links.ws("/echo"), additional_headers=guarded.auth_headers) as websocket:
        websocket.send("hello")
        assert websocket.recv() == "hello"  # no auth.ok: the handshake was enough


def test_a_wrong_header_is_refused_at_the_handshake_with_401(guarded):
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(guarded.links.ws("/echo"), additional_headers=bearer("wrong")),
    ):
        pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/echo", "/ball", "/chat"])
def test_first_message_auth_works_on_every_path(guarded, path):
    with browser_like(guarded, path) as websocket:
        websocket.send(json.dumps({"type": "auth", "token": TOKEN}))
        assert json.loads(websocket.recv()) == {"type": "auth.ok"}
        if path == "/ball":
            assert json.loads(websocket.recv())["type"] == "ball.state"
        else:
            websocket.send('{"type": "chat.join", "name": "ada"}')
            reply = json.loads(websocket.recv())
            assert reply["type"] == ("chat.welcome" if path == "/chat" else "chat.join")


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (json.dumps({"type": "auth", "token": "wrong"}), "wrong token"),
        (json.dumps({"type": "auth", "token": 42}), '{"type": "auth"'),
        (json.dumps({"type": "chat.join", "name": "ada"}), '{"type": "auth"'),
        ("not json", '{"type": "auth"'),
        ("[" * 5000, '{"type": "auth"'),  # deep enough to make json recurse too far
        (b"\x00\x01", '{"type": "auth"'),
    ],
)
@pytest.mark.parametrize("path", ["/echo", "/ball", "/chat"])
def test_anything_but_the_right_auth_event_closes_with_4001(guarded, path, first, reason):
    with browser_like(guarded, path) as websocket:
        websocket.send(first)
        # Nothing of the lesson arrives before auth: only the refusal, in band (a proxy may
        # not pass the close code on), then the close.
        refusal = json.loads(websocket.recv(timeout=5))
        assert refusal["type"] == "error" and refusal["code"] == "unauthorized"
        assert refusal["close"] == UNAUTHORIZED
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=5)
    assert websocket.close_code == UNAUTHORIZED
    assert reason in websocket.close_reason


def test_silence_closes_with_4001_after_the_grace_period(guarded):
    guarded.app.guard.grace = 0.3
    with browser_like(guarded, "/ball") as websocket:
        assert json.loads(websocket.recv(timeout=5))["close"] == UNAUTHORIZED
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=5)
    assert websocket.close_code == UNAUTHORIZED
    assert "within 0.3 s" in websocket.close_reason


def test_refused_clients_do_not_disturb_an_authenticated_one(guarded):
    with connect(guarded.links.ws("/chat"), additional_headers=guarded.auth_headers) as member:
        member.send('{"type": "chat.join", "name": "ada"}')
        assert json.loads(member.recv())["type"] == "chat.welcome"
        for attempt in ("wrong", "also wrong"):
            with browser_like(guarded, "/chat") as intruder:
                intruder.send(json.dumps({"type": "auth", "token": attempt}))
                assert json.loads(intruder.recv(timeout=5))["code"] == "unauthorized"
                with pytest.raises(ConnectionClosed):
                    intruder.recv(timeout=5)
        member.send('{"type": "chat.send", "text": "still here"}')
        while (event := json.loads(member.recv(timeout=5)))["type"] != "chat.message":
            assert event["type"] == "chat.joined"  # its own arrival; no intruder appears
        assert event["text"] == "still here"
    wait_for(lambda: guarded.app.clients["/chat"] == 0)  # intruders were never counted


def test_a_foreign_origin_is_refused_with_403_token_or_not(server, guarded):
    for running in (server, guarded):
        with (
            pytest.raises(InvalidStatus) as refused,
            connect(running.links.ws("/echo"), origin="https://evil.example"),
        ):
            pass
        assert refused.value.response.status_code == 403


def test_the_servers_own_pages_and_jupyterlab_may_connect(server):
    for origin in (server.http_url, "http://localhost:8888"):
        with connect(server.links.ws("/echo"), origin=origin) as websocket:
            websocket.send("hi")
            assert websocket.recv() == "hi"


def test_a_token_in_the_url_is_refused_with_400(guarded):
    with pytest.raises(InvalidStatus) as refused, connect(guarded.links.ws(f"/echo?token={TOKEN}")):
        pass
    assert refused.value.response.status_code == 400
    assert b"logs" in refused.value.response.body


def test_healthz_says_whether_a_token_is_needed(server, guarded):
    import urllib.request

    for running, expected in ((server, "none"), (guarded, "token")):
        with urllib.request.urlopen(running.links.url("/healthz"), timeout=5) as response:
            assert json.load(response)["auth"] == expected


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_token_never_reaches_the_log(guarded):
    handler = ListHandler()
    websockets_logger = logging.getLogger(WEBSOCKETS_LOGGER_NAME)
    level = websockets_logger.level
    websockets_logger.setLevel(logging.DEBUG)  # the handshake's headers and every frame
    websockets_logger.addHandler(handler)
    try:
        with connect(
            guarded.links.ws("/echo"), additional_headers=guarded.auth_headers
        ) as websocket:
            websocket.send("hello")
            websocket.recv()
        with browser_like(guarded, "/echo") as websocket:
            websocket.send(json.dumps({"type": "auth", "token": TOKEN}))
            websocket.recv()
    finally:
        websockets_logger.setLevel(level)
        websockets_logger.removeHandler(handler)
    text = "\n".join(handler.lines)
    assert "Authorization" in text and "[token]" in text  # the log did see both...
    assert TOKEN not in text  # ...and shows neither token


def test_a_server_for_the_network_needs_a_token():
    with pytest.raises(ValueError, match="needs a token"):
        start_server(port=0, host="0.0.0.0", name=f"open-{uuid.uuid4().hex[:8]}")


def test_links_carry_the_token_in_the_fragment_only(guarded):
    page = guarded.links.page("chat", name="ada")
    assert page.endswith(f"?name=ada#chat&token={TOKEN}")
    assert TOKEN not in guarded.links.ws("/chat") and TOKEN not in guarded.url
    assert TOKEN in guarded._repr_html_()  # the learner's own page links work with a click


# -- the command line -------------------------------------------------------------------------


def test_serve_for_the_network_without_a_token_exits_with_what_to_type():
    done = cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert done.returncode == 2
    assert "needs a token" in done.stderr and "--new-token" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_a_new_token_tells_the_room_how_to_join_and_clients_need_it():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "workshop_lib", "serve", "--new-token", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = ""
        while "WORKSHOP_TOKEN=" not in banner:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            banner += line
        token = banner.split("WORKSHOP_TOKEN=")[1].split()[0]
        assert len(token) == 22
        assert f"#chat&token={token}" in banner  # page links carry it after the '#'
        assert f"WORKSHOP_SERVER=http://127.0.0.1:{port}" in banner
        url = f"ws://127.0.0.1:{port}/echo"

        refused = cli("client", "echo", "hi", "--url", url)
        assert refused.returncode == 1 and "needs a token" in refused.stderr
        echoed = cli("client", "echo", "hi", "--url", url, "--token", token)
        assert echoed.returncode == 0 and echoed.stdout.startswith("hi")
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    assert token not in err  # the server's log lines
    assert "Traceback" not in err


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def test_a_lessons_http_data_wants_the_token_as_its_websocket_does(guarded):
    url = guarded.links.url("/api/ball")
    status, headers, body = _get(url)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer", body
    assert b"Authorization: Bearer <token>" in body
    assert _get(url, {"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = _get(url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["type"] == "ball.state"


def test_the_servers_counts_stay_open_on_a_token_server(guarded):
    # The room page shows them on a projector without the token; they name nobody.
    for path in ("/healthz", "/api/stats", "/api/pages"):
        status, _, body = _get(guarded.links.url(path))
        assert status == 200, (path, body)
    assert TOKEN.encode() not in _get(guarded.links.url("/api/stats"))[2]
