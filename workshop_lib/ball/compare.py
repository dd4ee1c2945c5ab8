"""Four ways to keep a client's ball fresh, measured alike: how old is what it shows, at what cost.

    push = serve_http_push(lab)                         # SSE and long polling (http_push.py)
    results = measure_all(lab, push, seconds=3)         # all four at once, over the same seconds
    measure_push(lab.links.ws("/ball"))                 # or one at a time:
    measure_sse(push.url("/ball/events"))
    measure_long_poll(push.url("/api/ball/poll"))
    measure_poll(lab.links.url("/api/ball"), interval=0.25)

*Staleness* is sampled every 10 ms: the age of the newest state the client holds at that
instant (now − the server's ``ts`` of that state), which is what a person looking at the
client would see. Every method counts the bytes that really cross its socket, both ways,
headers included: each client is a plain TCP socket (Nagle's delay off) that counts what
it sends and receives, with the protocol on top parsed by a library that never touches
the network itself (websockets' Sans-I/O client for the WebSocket, with no compression
offered; the standard library's ``http.client`` for HTTP, chunked SSE included). Nothing
is estimated and nothing is hidden. The bytes of the handshake or the first request count;
those of saying goodbye, after the measured seconds, do not.

The clients are minimal: a browser's requests carry a few hundred bytes more (User-Agent,
Accept-Language, cookies), once for push and SSE, once per update for the two polls.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

__all__ = [
    "Measurement",
    "measure_all",
    "measure_long_poll",
    "measure_poll",
    "measure_push",
    "measure_sse",
]

SAMPLE_EVERY = 0.010  # seconds between staleness samples
TIMEOUT = 5.0  # seconds without a byte before a measurement gives up


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

    @property
    def bytes_up_per_second(self) -> float:
        """Bytes from client to server per second."""
        return self.bytes_up / self.seconds

    @property
    def bytes_per_update(self) -> float:
        """Bytes both ways for each state received."""
        return (self.bytes_down + self.bytes_up) / self.updates if self.updates else float("nan")


class _Staleness:
    """Samples the age of the newest state every 10 ms on a thread, while in a ``with``."""

    def __init__(self, result: Measurement) -> None:
        self.result = result
        self.ts: float | None = None  # the server's clock when it made the newest state held
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="staleness", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            if self.ts is not None:
                self.result.staleness_ms.append((time.time() - self.ts) * 1e3)

    def __enter__(self) -> _Staleness:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


class _CountingSocket:
    """A TCP connection that counts every byte it sends and receives into ``result``.

    It has the few socket methods ``http.client`` calls (``sendall``, ``makefile``,
    ``close``); ``counting = False`` stops the count (for the goodbye).
    """

    def __init__(self, url: str, result: Measurement) -> None:
        parts = urlsplit(url)
        self.netloc = parts.netloc
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 80), timeout=TIMEOUT
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms waits
        self.result = result
        self.counting = True

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)
        if self.counting:
            self.result.bytes_up += len(data)

    def recv(self, size: int = 65536) -> bytes:
        data = self.sock.recv(size)
        if self.counting:
            self.result.bytes_down += len(data)
        return data

    def makefile(self, mode: str = "rb", *args: Any) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        self.counting = False
        self.sock.close()


class _Reader(io.RawIOBase):
    """The receiving side of a :class:`_CountingSocket` as a file, for ``http.client``."""

    def __init__(self, counted: _CountingSocket) -> None:
        self.counted = counted

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.counted.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _CountedHTTP(http.client.HTTPConnection):
    """``http.client`` over a counting socket, reopened (and counted) if the server closes."""

    def __init__(self, url: str, result: Measurement) -> None:
        parts = urlsplit(url)
        super().__init__(parts.hostname or "127.0.0.1", parts.port or 80, timeout=TIMEOUT)
        self._url, self._result = url, result

    def connect(self) -> None:
        self.sock = _CountingSocket(self._url, self._result)


def _get(connection: http.client.HTTPConnection, path: str, accept: str) -> None:
    # Only what a request needs: Host (added by http.client) and Accept.
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.putheader("Accept", accept)
    connection.endheaders()


def measure_push(url: str, seconds: float = 3.0) -> Measurement:
    """Receive the WebSocket ball stream at ``url`` for ``seconds``."""
    result = Measurement("WebSocket", seconds)
    counted = _CountingSocket(url, result)
    protocol = ClientProtocol(parse_uri(url))  # no extensions offered: no compression

    def flush() -> None:  # the handshake request, pongs, the close frame
        for data in protocol.data_to_send():
            if data:
                counted.sendall(data)

    try:
        protocol.send_request(protocol.connect())
        flush()
        with _Staleness(result) as staleness:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                data = counted.recv()
                if not data:
                    break
                protocol.receive_data(data)
                if protocol.handshake_exc is not None:
                    raise protocol.handshake_exc
                for event in protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        result.updates += 1
                        staleness.ts = json.loads(event.data)["ts"]
                flush()
        counted.counting = False
        protocol.send_close()
        flush()
    finally:
        counted.close()
    return result


def measure_sse(url: str, seconds: float = 3.0) -> Measurement:
    """Read the Server-Sent Events stream at ``url`` for ``seconds`` (one long response)."""
    result = Measurement("SSE", seconds)
    connection = _CountedHTTP(url, result)
    try:
        _get(connection, urlsplit(url).path, "text/event-stream")
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status} {response.read()[:200]!r}")
        with _Staleness(result) as staleness:
            deadline = time.monotonic() + seconds
            data: list[bytes] = []
            while time.monotonic() < deadline:
                line = response.readline()
                if not line:
                    break  # the server ended the stream
                if line.startswith(b"data:"):
                    data.append(line[5:].strip())
                elif line in (b"\n", b"\r\n") and data:  # a blank line ends an event
                    result.updates += 1
                    staleness.ts = json.loads(b"\n".join(data))["ts"]
                    data = []
    finally:
        connection.close()
    return result


def measure_long_poll(url: str, seconds: float = 3.0) -> Measurement:
    """Long-poll ``url`` for ``seconds``: ask for a tick newer than the one held, at once again."""
    result = Measurement("long poll", seconds)
    connection = _CountedHTTP(url, result)
    path, since = urlsplit(url).path, None
    try:
        with _Staleness(result) as staleness:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                _get(connection, path if since is None else f"{path}?since={since}", "*/*")
                response = connection.getresponse()
                body = response.read()  # all of it, or the next request cannot follow
                if response.status == 204:
                    continue  # held a long time and nothing newer: ask again
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status} {body[:200]!r}")
                state = json.loads(body)
                result.updates += 1
                since, staleness.ts = state["tick"], state["ts"]
    finally:
        connection.close()
    return result


def measure_poll(url: str, interval: float, seconds: float = 3.0) -> Measurement:
    """GET ``url`` every ``interval`` seconds for ``seconds`` (a drift-free schedule).

    The workshop server answers each request and closes the connection, so every poll
    pays for a new TCP connection too (no keep-alive), as plain ``process_request`` does.
    """
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    result = Measurement(f"poll every {interval * 1e3:.0f} ms", seconds)
    with _Staleness(result) as staleness:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            counted = _CountingSocket(url, result)
            try:
                counted.sendall(request)
                response = b""
                while chunk := counted.recv():  # the server closes after each response
                    response += chunk
            finally:
                counted.close()
            result.updates += 1
            staleness.ts = json.loads(response.partition(b"\r\n\r\n")[2])["ts"]
            n += 1
            time.sleep(max(0.0, started + n * interval - time.monotonic()))
    return result


def measure_all(
    server: Any,
    http_push: Any,
    seconds: float = 3.0,
    intervals: Sequence[float] = (0.25, 1.0),
) -> list[Measurement]:
    """All four methods at once, one thread each, over the same ``seconds`` of the same ball.

    ``server`` is the workshop server, ``http_push`` its :func:`serve_http_push`. Returns
    WebSocket, SSE, long poll, then one poll per interval. Run together, the clients share
    this process (and its GIL) with each other and, in a notebook, with the server: each
    is a little later than it would be alone, all alike.
    """
    jobs = [
        (measure_push, server.links.ws("/ball")),
        (measure_sse, http_push.url("/ball/events")),
        (measure_long_poll, http_push.url("/api/ball/poll")),
    ]
    with ThreadPoolExecutor(len(jobs) + len(intervals), thread_name_prefix="measure") as pool:
        futures = [pool.submit(job, url, seconds=seconds) for job, url in jobs]
        futures += [
            pool.submit(measure_poll, server.links.url("/api/ball"), interval, seconds)
            for interval in intervals
        ]
        return [future.result() for future in futures]
