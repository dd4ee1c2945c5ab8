"""connections.py's reach into websockets: checked at import, and a fallback on public API.

Either way the registry holds every TCP connection from accept to close, frees its slot
when it is gone, and lets a stop cut a half-sent handshake at once.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
from websockets.sync.client import connect

from tests.helpers import wait_for
from workshop_lib import start_server
from workshop_lib.app import connections
from workshop_lib.app.connections import _select, _Tracked, _Watched


def test_the_installed_websockets_has_every_internal_connections_reads():
    assert connections.missing_internals() == []
    assert connections.IMPLEMENTATION == "asyncio callbacks"


def test_a_missing_internal_selects_the_fallback_with_one_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="workshop_lib.app.connections"):
        assert _select([]) == "asyncio callbacks"  # nothing missing: no warning
        assert _select(["Connection.transport (set in connection_made)"]) == "wait_closed"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "Connection.transport (set in connection_made)" in record.getMessage()


def test_the_check_notices_websockets_no_longer_implementing_connection_made(monkeypatch):
    # As if websockets' Connection left the asyncio callbacks to another object.
    monkeypatch.delattr("websockets.asyncio.connection.Connection.connection_made")
    assert connections.missing_internals() == ["Connection.connection_made()"]


@pytest.mark.parametrize(
    ("implementation", "kind"), [("asyncio callbacks", _Tracked), ("wait_closed", _Watched)]
)
def test_connections_are_registered_freed_and_cut_at_a_stop(monkeypatch, implementation, kind):
    monkeypatch.setattr(connections, "IMPLEMENTATION", implementation)
    server = start_server(port=0, name=f"registry-{implementation.replace(' ', '-')}")
    try:
        app = server.app
        with connect(server.links.ws("/echo"), proxy=None) as websocket:
            websocket.send("hello")
            assert websocket.recv(timeout=5) == "hello"
            [connection] = app.connections.all
            assert type(connection) is kind
            assert app.limits.open == 1
        # Gone: out of the registry, its slot free again (on_lost).
        wait_for(lambda: not app.connections.all and app.limits.open == 0)
        # A handshake that never finishes is pending, and a stop cuts it at once.
        half = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        half.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        wait_for(lambda: app.connections.pending())
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
        assert took < 2, f"stop() took {took:.2f} s"
        try:
            answer = half.recv(100)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # cut, not answered
        half.close()
    finally:
        server.stop()
