"""Python clients: the command-line echo client and small helpers the notebooks show.

The notebooks teach websockets' own client API (``async with connect(url) as websocket``);
this module only adds what a lesson needs around it::

    from websockets.sync.client import connect
    with connect("ws://127.0.0.1:8765/echo") as websocket:
        print(format_handshake(websocket))      # the HTTP upgrade, as exchanged
    for reply, ms in echo_round_trips("ws://127.0.0.1:8765/echo", ["hello"]):
        print(reply, ms)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection as AsyncClientConnection
from websockets.sync.client import ClientConnection, connect

from ..server.handle import bearer
from .proxies import proxy_for

__all__ = ["DEFAULT_URL", "EchoReply", "echo_round_trips", "format_handshake"]

DEFAULT_URL = "ws://127.0.0.1:8765/echo"


def format_handshake(websocket: ClientConnection | AsyncClientConnection) -> str:
    """The opening handshake a client really exchanged: its GET request and the 101 reply."""
    request, response = websocket.request, websocket.response
    if request is None or response is None:
        raise ValueError("this connection has not completed its opening handshake")
    lines = [f"GET {request.path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.raw_items()]
    lines += ["", f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers.raw_items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class EchoReply:
    """One echoed message and its round-trip time."""

    sent: str
    received: str | bytes
    ms: float


def echo_round_trips(
    url: str, messages: Iterable[str], timeout: float = 5.0, token: str | None = None
) -> list[EchoReply]:
    """Send each message on one connection, wait for its echo, and time the round trip.

    Usage: ``echo_round_trips("ws://127.0.0.1:8765/echo", ["hi"])``; ``token`` for a server
    that asks for one (it goes in the Authorization header).
    """
    replies = []
    with connect(
        url, open_timeout=timeout, additional_headers=bearer(token), proxy=proxy_for(url)
    ) as websocket:
        for message in messages:
            started = time.perf_counter()
            websocket.send(message)
            received = websocket.recv(timeout=timeout)
            replies.append(EchoReply(message, received, (time.perf_counter() - started) * 1e3))
    return replies
