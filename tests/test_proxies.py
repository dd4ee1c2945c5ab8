"""Lesson clients reach this machine's server directly, whatever proxy the system names."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from websockets.sync.client import connect

from workshop_lib.ball.client import BallClient
from workshop_lib.chat.client import ChatClient
from workshop_lib.clients.proxies import PROXY_VARIABLES, interfering_proxy, proxy_for
from workshop_lib.clients.round_trip import echo_round_trips


@pytest.fixture
def dead_proxy(monkeypatch) -> str:
    """HTTP(S)_PROXY set to a port where nothing listens; no NO_PROXY."""
    for name in list(os.environ):
        if name.lower() in (*PROXY_VARIABLES, "no_proxy"):
            monkeypatch.delenv(name)
    with socket.socket() as sock:  # a port that was free a moment ago: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HTTPS_PROXY", address)
    monkeypatch.setenv("HTTP_PROXY", address)
    return address


def test_the_lesson_clients_reach_a_loopback_server_past_a_dead_proxy(server, dead_proxy):
    url = server.links.ws("/echo")
    # websockets itself would go to the proxy: the setting is in force.
    with pytest.raises(OSError), connect(url, open_timeout=2):
        pass
    assert [reply.received for reply in echo_round_trips(url, ["hi"])] == ["hi"]
    with BallClient(server.links.ws("/ball")) as ball:
        assert ball.wait_for_frame()["type"] == "ball.state"
    with ChatClient(server.links.ws("/chat"), "ada") as ada:
        assert ada.you == "ada"

    async def through_the_handle() -> str:
        async with server.connect("/echo") as websocket:
            await websocket.send("handle")
            return await websocket.recv()

    assert asyncio.run(through_the_handle()) == "handle"


def test_only_loopback_is_forced_direct():
    assert proxy_for("ws://127.0.0.1:8765/ball") is None
    assert proxy_for("ws://localhost:8765") is None
    assert proxy_for("ws://[::1]:8765/chat") is None
    # The room's server: the system's settings decide, NO_PROXY included.
    assert proxy_for("ws://192.168.1.20:8765/chat") is True
    assert proxy_for("wss://workshop.example.org/chat") is True


def test_what_counts_as_an_interfering_proxy():
    assert interfering_proxy({}) == {}
    assert interfering_proxy({"HTTPS_PROXY": "http://p:3128"}) == {"HTTPS_PROXY": "http://p:3128"}
    assert interfering_proxy({"https_proxy": "http://p:3128", "no_proxy": "*"}) == {}
    covered = {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "localhost,127.0.0.1"}
    assert interfering_proxy(covered) == {}
    half = {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "localhost"}  # 127.0.0.1 still proxied
    assert interfering_proxy(half) == {"HTTP_PROXY": "http://p:3128"}
    assert interfering_proxy({"ALL_PROXY": "socks5://p:1080"}) == {"ALL_PROXY": "socks5://p:1080"}
    assert interfering_proxy({"HTTPS_PROXY": " "}) == {}  # set but empty: no proxy
