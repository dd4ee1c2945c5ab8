"""Push against polling, measured from Python: how old is what each client shows, at what cost.

    push = measure_push(server.links.ws("/ball"), seconds=5)
    poll = measure_poll(server.links.url("/api/ball"), interval=0.25, seconds=5)
    push.staleness_ms, poll.bytes_down, ...

*Staleness* is sampled every 10 ms: the age of the newest state the client holds at that
instant (now − the server's ``ts`` of that state), which is what a person looking at the
client would see. Both sides count the bytes that really cross the socket: the poller uses
a plain socket (request and full response, headers included, with Nagle's delay off); the
push client turns compression off so each frame's size is exactly its payload plus its
WebSocket header.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.sync.client import connect

__all__ = ["Measurement", "measure_poll", "measure_push"]

SAMPLE_EVERY = 0.010  # seconds between staleness samples


@dataclass
class Measurement:
    """What one client received over ``seconds``."""

    method: str
    seconds: float
    updates: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    staleness_ms: list[float] = field(default_factory=list)

    @property
    def median_staleness_ms(self) -> float:
        """The median of the staleness samples."""
        ordered = sorted(self.staleness_ms)
        return ordered[len(ordered) // 2] if ordered else float("nan")

    @property
    def bytes_per_second(self) -> float:
        """Bytes from server to client per second."""
        return self.bytes_down / self.seconds


def _sample_staleness(result: Measurement, latest_ts: list[float], stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_EVERY):
        if latest_ts:
            result.staleness_ms.append((time.time() - latest_ts[0]) * 1e3)


def _frame_header(payload: int) -> int:
    # Server frames are unmasked: 2 bytes, plus 2 or 8 for longer payloads.
    return 2 if payload < 126 else 4 if payload < 65536 else 10


def measure_push(url: str, seconds: float = 5.0) -> Measurement:
    """Receive the ball stream at ``url`` for ``seconds``."""
    result = Measurement("push", seconds)
    latest_ts: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_staleness, args=(result, latest_ts, stop))
    with connect(url, compression=None) as websocket:
        result.bytes_down += len(websocket.response.serialize()) if websocket.response else 0
        result.bytes_up += len(websocket.request.serialize()) if websocket.request else 0
        sampler.start()
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    message = websocket.recv(timeout=left)
                except TimeoutError:
                    break
                result.updates += 1
                result.bytes_down += len(message) + _frame_header(len(message))
                latest_ts[:] = [json.loads(message)["ts"]]
        finally:
            stop.set()
            sampler.join()
    return result


def measure_poll(url: str, interval: float, seconds: float = 5.0) -> Measurement:
    """GET ``url`` every ``interval`` seconds for ``seconds`` (a drift-free schedule)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    result = Measurement(f"poll every {interval * 1e3:.0f} ms", seconds)
    latest_ts: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_staleness, args=(result, latest_ts, stop))
    sampler.start()
    started = time.monotonic()
    try:
        n = 0
        while time.monotonic() - started < seconds:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(request)
                response = b""
                while chunk := sock.recv(65536):  # the server closes after each response
                    response += chunk
            result.updates += 1
            result.bytes_up += len(request)
            result.bytes_down += len(response)
            body = response.partition(b"\r\n\r\n")[2]
            latest_ts[:] = [json.loads(body)["ts"]]
            n += 1
            time.sleep(max(0.0, started + n * interval - time.monotonic()))
    finally:
        stop.set()
        sampler.join()
    return result
