"""The connection lifecycle: heartbeats, dead peers, and clients that reconnect by themselves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.sync.client import connect

from workshop_lib import WorkshopServer, start_server
from workshop_lib.ball.client import BallClient
from workshop_lib.chat.client import ChatClient
from workshop_lib.clients.backoff import backoff_delays
from workshop_lib.clients.raw import RawClient
from workshop_lib.clients.reading import Event, ReadingClient

from .helpers import wait_for, wait_until


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    delays = backoff_delays(random=lambda: 0.5)  # 0.5: no jitter
    assert [next(delays) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_jitter_spreads_clients_and_never_passes_the_cap():
    firsts = {next(backoff_delays()) for _ in range(200)}
    assert len(firsts) > 150 and min(firsts) >= 0.4 and max(firsts) <= 0.6
    extremes = backoff_delays(random=lambda: 1.0)  # the largest jitter, every time
    assert all(next(extremes) <= 10.0 for _ in range(10))


# -- heartbeat and dead peers -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ball", "/chat"])
def test_a_heartbeat_is_answered_before_and_after_joining(server, path):
    with connect(server.links.ws(path)) as websocket:
        if path == "/chat":
            websocket.send('{"type": "heartbeat"}')  # before chat.join: still answered
            assert json.loads(websocket.recv(timeout=5)) == {"type": "heartbeat"}
            websocket.send('{"type": "chat.join", "name": "ada"}')
        websocket.send('{"type": "heartbeat"}')
        while (event := json.loads(websocket.recv(timeout=5)))["type"] != "heartbeat":
            assert event["type"] in {"ball.state", "chat.welcome", "chat.joined"}
        assert event == {"type": "heartbeat"}


def test_a_peer_that_stops_answering_pings_is_closed_with_1011():
    with start_server(port=0, name=unique("pings"), ping_interval=0.3) as server:
        silent = RawClient("127.0.0.1", server.port, "/echo")  # never answers a ping
        wait_for(lambda: server.app.clients["/echo"] == 1)
        started = time.monotonic()
        assert silent.close_code() == 1011  # "keepalive ping timeout"
        assert time.monotonic() - started < 3
        wait_for(lambda: server.app.clients["/echo"] == 0)


# -- reconnecting Python clients --------------------------------------------------------------


@pytest.fixture
def restartable() -> Iterator[list[WorkshopServer]]:
    """A server whose port a test can bring back: restart() stops it and starts a new one."""
    servers = [start_server(port=0, name=unique("restart"))]
    yield servers
    for server in servers:
        server.stop()


def restart(servers: list[WorkshopServer]) -> WorkshopServer:
    port = servers[-1].port
    servers[-1].stop()  # every client gets 1001, going away
    time.sleep(0.3)  # a moment with no server: the first reconnect attempts are refused
    servers.append(start_server(port=port, name=unique("restart")))
    return servers[-1]


def test_a_chat_member_rejoins_under_the_same_name_after_a_restart(restartable):
    url = restartable[-1].links.ws("/chat")
    with ChatClient(url, "ada", reconnect=True) as ada:
        restart(restartable)
        assert wait_until(lambda: ada.reconnects == 1, timeout=10), "ada never reconnected"
        with ChatClient(url, "grace") as grace:
            assert "ada" in grace.users
            ada.send("I'm back")
            wait_for(lambda: any(m["text"] == "I'm back" for m in grace.messages))
        assert ada.you == "ada"


def test_the_ball_picks_up_again_after_a_restart(restartable):
    with BallClient(restartable[-1].links.ws("/ball"), reconnect=True) as ball:
        ball.wait_for_frame()
        restart(restartable)
        wait_for(lambda: ball.reconnects == 1, timeout=10)
        frames = ball.frames
        wait_for(lambda: ball.frames > frames + 30)  # half a second of new frames
        assert ball.connected


class Recorder(ReadingClient):
    def __init__(self, url: str) -> None:
        self.events: list[Event] = []
        super().__init__(url, reconnect=True)
        self.start_reading("recorder")

    def handle(self, event: Event) -> None:
        self.events.append(event)


def closing_with(code: int):
    async def handler(websocket: ServerConnection) -> None:
        await websocket.send('{"type": "hello"}')
        await websocket.close(code, "test")

    return handler


def test_a_dropped_connection_is_retried_but_a_refusal_is_final(server):
    server.route("/flaky", closing_with(1011))  # an error: worth another try
    server.route("/refused", closing_with(4001))  # unauthorized: retrying cannot help
    with (
        Recorder(server.links.ws("/flaky")) as flaky,
        Recorder(server.links.ws("/refused")) as refused,
    ):
        wait_for(lambda: flaky.reconnects >= 2 and len(flaky.events) >= 3, timeout=10)
        assert refused.reconnects == 0 and len(refused.events) == 1
        assert not refused.connected and refused.close_code == 4001
