"""The SSE and long-poll companion (ball/http_push.py) under the WebSocket routes' limits:
a connection cap, idle keep-alive connections closed, non-reading streams closed, and the
memory given back after a wave of closes."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import wait_for, wait_until
from workshop_lib import connections, start_server
from workshop_lib.ball.http_push import serve_http_push

STREAM = b"GET /ball/events HTTP/1.1\r\nHost: x\r\n\r\n"


def open_stream(port: int, receive_buffer: int | None = None) -> tuple[socket.socket, bytes]:
    """A raw SSE request; returns the socket and the response's first bytes."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(STREAM)
    return sock, sock.recv(4096)


@pytest.fixture
def small_server() -> Iterator:
    with start_server(port=0, name=f"push-{uuid.uuid4().hex[:8]}", max_connections=5) as server:
        yield server


def test_streams_take_the_servers_slots_and_the_one_over_gets_503(small_server):
    with serve_http_push(small_server) as push:
        streams = [open_stream(push.port) for _ in range(5)]
        try:
            assert all(first.startswith(b"HTTP/1.1 200") for _, first in streams)
            wait_for(lambda: small_server.app.limits.open == 5)
            extra, answer = open_stream(push.port)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503"), answer
            assert b"Retry-After: 10" in head
            assert json.loads(body)["code"] == "server_full"
            with contextlib.suppress(ConnectionResetError):  # closed, its request unread
                assert extra.recv(100) == b""  # and closed
            extra.close()
            streams.pop()[0].close()  # a slot comes free when a stream ends
            wait_for(lambda: small_server.app.limits.open == 4)
            again, first = open_stream(push.port)
            assert first.startswith(b"HTTP/1.1 200")
            again.close()
        finally:
            for sock, _ in streams:
                sock.close()
        wait_for(lambda: small_server.app.limits.open == 0)


def test_an_idle_keep_alive_connection_is_closed_and_frees_its_slot(small_server):
    with serve_http_push(small_server, idle=1.0) as push:
        conn = http.client.HTTPConnection("127.0.0.1", push.port, timeout=5)
        conn.request("GET", "/api/ball/poll")
        assert conn.getresponse().read()  # the state at once; the connection is kept alive
        assert small_server.app.limits.open == 1
        assert wait_until(lambda: small_server.app.limits.open == 0, timeout=5)
        conn.close()


def test_a_stream_that_does_not_read_is_closed_after_the_stall_time(small_server, monkeypatch):
    monkeypatch.setattr(connections, "BUFFERS", 4096)  # full in a second or two of ticks
    with serve_http_push(small_server, stall=1.0) as push:
        sock, first = open_stream(push.port, receive_buffer=4096)
        assert first.startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: small_server.app.limits.open == 0, timeout=20)
        sock.close()


def test_a_wave_of_closed_streams_gives_memory_back(small_server):
    small_server.app.limits.total = None
    trims = small_server.app.trimmer.trims
    with serve_http_push(small_server) as push:
        streams = [open_stream(push.port) for _ in range(25)]  # a wave is 20
        for sock, _ in streams:
            sock.close()
        wait_for(lambda: small_server.app.limits.open == 0)
        assert wait_until(lambda: small_server.app.trimmer.trims > trims, timeout=10)
