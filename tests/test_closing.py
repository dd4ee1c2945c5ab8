"""closing.py's reach into websockets: checked at import, and a fallback that still closes right.

The in-band behaviour itself (the event before each close) is tests/test_inband_errors.py's.
"""

from __future__ import annotations

import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.server import ServerProtocol
from websockets.sync.client import connect

from tests.helpers import wait_for
from workshop_lib import start_server
from workshop_lib.clients.raw import RawClient
from workshop_lib.wire import closing
from workshop_lib.wire.closing import _AnnouncesTooBig, _select, announce_too_big

TOKEN = "s3cret-for-closing"


def test_the_installed_websockets_has_every_internal_closing_reads():
    assert closing.missing_internals() == []
    assert closing.IMPLEMENTATION == "in band"
    assert type(announce_too_big(ServerProtocol())) is _AnnouncesTooBig


def test_a_missing_internal_selects_the_fallback_with_one_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="workshop_lib.wire.closing"):
        assert _select([]) == "in band"  # nothing missing: no warning
        assert _select(["ServerProtocol.close_sent"]) == "websockets"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "ServerProtocol.close_sent" in record.getMessage()


def test_the_check_names_what_a_websockets_release_took_away(monkeypatch):
    monkeypatch.delattr("websockets.protocol.Protocol.send_text")
    monkeypatch.delattr("websockets.streams.StreamReader.discard")
    assert closing.missing_internals() == [
        "ServerProtocol.send_text",
        "ServerProtocol.reader.discard()",
    ]


def refused_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if " refused on /chat " in r.getMessage()]


@pytest.mark.parametrize("implementation", ["in band", "websockets"])
def test_a_message_over_the_limit_still_closes_with_1009(monkeypatch, implementation):
    monkeypatch.setattr(closing, "IMPLEMENTATION", implementation)
    name = f"too-big-{implementation.replace(' ', '-')}"
    with (
        start_server(port=0, name=name) as server,
        connect(server.links.ws("/echo"), max_size=None, proxy=None) as websocket,
    ):
        websocket.send("small")
        assert websocket.recv(timeout=5) == "small"  # an ordinary connection otherwise
        websocket.send("x" * (64 * 1024 + 1))
        events = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                events.append(json.loads(websocket.recv(timeout=5)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    announced = [e for e in events if e.get("code") == "message_too_big"]
    # The fallback is websockets' own close: correct, only without the event before it.
    assert len(announced) == (1 if implementation == "in band" else 0), events


@pytest.mark.parametrize(("implementation", "logged"), [("in band", 4001), ("websockets", 1006)])
def test_a_refusal_is_logged_with_the_close_the_server_sent(
    monkeypatch, caplog, implementation, logged
):
    """A client that never answers the close (behind a proxy that cuts the line): the
    connection's own close code is 1006; the server's log says 4001, what it sent, where
    websockets' internals let it read that, and the connection's code in the fallback."""
    monkeypatch.setattr(closing, "IMPLEMENTATION", implementation)
    caplog.set_level(logging.INFO, logger="workshop_lib")
    with start_server(port=0, name="refusal-log", token=TOKEN) as server:
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}  # a browser: auth by message
        raw = RawClient("127.0.0.1", server.port, "/chat", headers=origin)
        try:
            assert raw.response.startswith(b"HTTP/1.1 101")
            raw.send_frame(Opcode.TEXT, json.dumps({"type": "auth", "token": "wrong"}).encode())
            # It reads nothing and answers no close: the server's close times out (2 s).
            wait_for(lambda: refused_lines(caplog), timeout=15)
        finally:
            raw.vanish()
    [line] = refused_lines(caplog)
    assert f"(close {logged})" in line, line
