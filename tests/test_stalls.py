"""Clients that do not read (stalls.py): a ping flood costs bounded memory, and a peer whose
buffer stays full, or whose close cannot get out, loses its connection within a deadline."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from workshop_lib import start_server
from workshop_lib.chat.server import ChatLesson
from workshop_lib.clients.raw import RawClient
from workshop_lib.wire.stalls import BoundedWrites, _select, missing_internals

from .helpers import wait_for, wait_until

PING = Frame(Opcode.PING, b"p" * 125).serialize(mask=True, extensions=[])  # 131 bytes
BURST = PING * 500  # 65 KB of pings: 63 KB of pongs to write


async def _largest_write_buffer(app) -> int:
    return max((c.transport.get_write_buffer_size() for c in app.connections.all), default=0)


def flood_pings(client: RawClient, total: int) -> int:
    """Send up to ``total`` bytes of pings without reading; stop when the server stops
    taking them (the send blocks for a second). Returns the bytes sent."""
    client.sock.settimeout(1)
    # The client's own kernel buffer small, so that what it sent is what the server took.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sent = 0
    try:
        while sent < total:
            client.sock.sendall(BURST)  # whole frames: a partial send() would cut one
            sent += len(BURST)
    except TimeoutError:
        pass  # the server stopped reading
    except (ConnectionResetError, BrokenPipeError):
        pass  # or cut the connection
    return sent


@pytest.fixture
def server():
    with start_server(port=0, name=f"stalls-{uuid.uuid4().hex[:8]}") as running:
        yield running


def test_the_internals_are_there_and_their_absence_warns(caplog):
    assert missing_internals() == []
    assert _select([]) == "backpressure"
    assert _select(["Assembler.paused"]) == "hard limit"
    assert "Assembler.paused" in caplog.text


@pytest.mark.parametrize("path", ["/echo", "/ball", "/chat"])
def test_a_ping_flood_that_never_reads_costs_bounded_memory(server, path):
    client = RawClient("127.0.0.1", server.port, path, receive_buffer=4096)
    try:
        sent = flood_pings(client, 20 * 1024 * 1024)
        largest = server.run(_largest_write_buffer(server.app))
        # Reading stops once 16 KiB wait unsent; one read more (the kernel's receive
        # buffer, capped at 64 KiB and doubled by Linux) can add its pongs on top.
        assert largest < 200_000, f"{largest} bytes unsent after {sent} bytes of pings"
        assert sent < 2 * 1024 * 1024, f"the server read {sent} bytes of pings from a non-reader"
    finally:
        client.vanish()


def test_a_ping_flood_before_login_costs_bounded_memory():
    with start_server(port=0, name=f"stalls-{uuid.uuid4().hex[:8]}", token="t0ken") as server:
        # A browser's handshake (an Origin, no token): the token is to come as an event.
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}
        client = RawClient("127.0.0.1", server.port, "/echo", receive_buffer=4096, headers=origin)
        try:
            assert b" 101 " in client.response
            sent = flood_pings(client, 20 * 1024 * 1024)
            largest = server.run(_largest_write_buffer(server.app))
            assert largest < 200_000 and sent < 2 * 1024 * 1024, (largest, sent)
        finally:
            client.vanish()


def test_a_client_that_stops_reading_is_cut_after_the_stall_timeout(server, caplog):
    server.app.connections.stall_watch.timeout = 1.0
    client = RawClient("127.0.0.1", server.port, "/echo", receive_buffer=4096)
    flood_pings(client, 20 * 1024 * 1024)
    started = time.monotonic()
    wait_for(lambda: server.app.limits.open == 0, timeout=10)
    took = time.monotonic() - started
    assert took < 5, f"the non-reader kept its slot {took:.1f} s"
    assert "cut: it read nothing for 1 s" in caplog.text
    client.sock.close()


def test_a_reader_that_is_slow_for_a_moment_is_not_cut(server):
    """A full buffer that drains within the stall timeout costs nothing."""
    server.app.connections.stall_watch.timeout = 2.0
    payload = "x" * 60_000
    with connect(server.links.ws("/echo"), open_timeout=5, max_size=None) as ws:
        for _ in range(20):
            ws.send(payload)
        time.sleep(1)  # the replies pile up in the server's buffer, on purpose
        assert [len(ws.recv(timeout=5)) for _ in range(20)] == [60_000] * 20
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_a_close_to_a_primed_non_reader_is_over_by_its_deadline():
    """The close waits for room only until the close timeout (2 s), then the line is cut:
    here a chat member who cannot keep up gets 1008, and loses its slot at once."""
    lesson = ChatLesson(queue_limit=20_000)
    with start_server(port=0, name=f"stalls-{uuid.uuid4().hex[:8]}", lessons=[lesson]) as server:
        server.app.connections.stall_watch.timeout = None  # only the close's own deadline at work
        client = RawClient("127.0.0.1", server.port, "/chat", receive_buffer=4096)
        join = json.dumps({"type": "chat.join", "name": "slow"}).encode()
        client.sock.sendall(Frame(Opcode.TEXT, join).serialize(mask=True, extensions=[]))
        wait_for(lambda: "slow" in lesson.members)
        client.sock.sendall(PING * 1000)  # 131 KB of pings, once: primed, its buffers full
        wait_for(lambda: server.run(_largest_write_buffer(server.app)) > 16 * 1024)
        with connect(server.links.ws("/chat"), open_timeout=5) as talker:
            talker.send(json.dumps({"type": "chat.join", "name": "talker"}))
            talker.send(json.dumps({"type": "chat.send", "text": "y" * 400}))
            # Found too slow: closed with 1008, behind a buffer that never drains.
            wait_for(lambda: "slow" not in lesson.members, timeout=10)
            started = time.monotonic()
            held = not wait_until(lambda: server.app.limits.open == 1, timeout=10)
            took = time.monotonic() - started
        assert not held, "the slow member still holds its slot 10 s after its close"
        assert took < 4, f"the slow member's close took {took:.1f} s (close timeout: 2 s)"
        client.sock.close()


def test_the_fallback_cuts_a_ping_flood_at_the_hard_limit(server, monkeypatch):
    monkeypatch.setattr(BoundedWrites, "implementation", "hard limit")
    client = RawClient("127.0.0.1", server.port, "/echo", receive_buffer=4096)
    sent = flood_pings(client, 20 * 1024 * 1024)
    assert sent < 4 * 1024 * 1024
    assert wait_until(lambda: server.app.limits.open == 0, timeout=5)
    client.sock.close()


def test_a_stop_cuts_a_non_reader_at_once_instead_of_waiting_out_its_grace(caplog):
    """Stopping sends every client a close and gives them a grace to answer; a client whose
    buffer is full reads no close, so it is cut at once and the grace is not spent on it."""
    server = start_server(port=0, name=f"stalls-{uuid.uuid4().hex[:8]}")
    server.app.connections.stall_watch.timeout = None  # only the stop deals with it
    client = RawClient("127.0.0.1", server.port, "/echo", receive_buffer=4096)  # never reads
    try:
        client.sock.sendall(PING * 1000)  # 131 KB of pings, once: its pongs fill the buffers

        async def stalled() -> int:
            return sum(c.writes_stalled for c in server.app.connections.all)

        wait_for(lambda: server.run(stalled()) == 1, timeout=10)
        with caplog.at_level("INFO", logger="workshop_lib.server.start"):
            server.stop()
        assert "did not close within" not in caplog.text, caplog.text
    finally:
        server.stop()
        client.sock.close()
