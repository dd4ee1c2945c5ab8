"""The ball over plain HTTP: Server-Sent Events and long polling, beside the WebSocket.

    push = serve_http_push(lab)            # on the server's loop, on a port of its own
    push.url("/ball/events")               # SSE: one endless text/event-stream response
    push.url("/api/ball/poll?since=41")    # long polling: held until there is a tick after 41
    push.bytes_sent, push.bytes_received   # every byte its sockets moved, headers included
    push.stop()

**Same ball, same tick.** ``BallLesson.frame_listeners`` hands this server each frame on
the server's loop at the moment the ticker sends it to the WebSocket clients, so an SSE
``data:`` line is the WebSocket message byte for byte, and a long poll's body is too.

**Why a companion server, not routes on the app.** The app answers plain HTTP from
websockets' ``process_request``, which returns one whole response and then closes the
connection: it cannot stream a body that never ends (SSE). It could hold a request (it may
be a coroutine), but a long-polling browser keeps its connection alive between requests,
and a server that closes each time would charge long polling a new TCP connection (a
round trip) per update that it does not really pay. tornado streams (``flush()`` in an
async ``get()``), holds, and keeps connections alive; it is installed already (JupyterLab's
server runs on it); and it runs on the workshop server's asyncio loop, so this is no new
thread. Only a notebook loads this
module: ``serve`` and its lessons never import tornado.

**Counted on the server too.** Every stream's reads and writes on its socket are counted,
so the comparison's client-side counts can be checked against what the server really sent.

**The same limits as the WebSocket routes.** Every TCP connection (a stream, a held poll,
a keep-alive connection between polls) takes a slot of the workshop server's own
:class:`~workshop_lib.app.limits.Limits` (total and per address) for as long as it is open; a
connection over the limit gets 503 or 429 with ``Retry-After``, in the ``error`` shape, and
is closed. A keep-alive connection idle for ``idle`` seconds is closed; a stream whose
client stops reading is closed once a frame has waited ``stall`` seconds; and after a wave of
closes the memory goes back to the system (the app's :class:`~workshop_lib.server.memory.Trimmer`).

Bad input gets a clear answer in the protocol's ``error`` shape: 400 for a ``since`` or
``Last-Event-ID`` that is not a whole number, 404 for another path, 405 for another method.
A long poll still unanswered after ``hold`` seconds gets 204 (no change), as proxies cut
idle requests near a minute; the client asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler

from ..app import connections
from ..app.limits import Limits
from ..server.memory import Trimmer
from ..wire.stalls import STALL_TIMEOUT

__all__ = ["HttpPush", "serve_http_push"]

logger = logging.getLogger("workshop_lib.ball.http")

RETRY_MS = 1000  # SSE's "retry:": how soon a browser's EventSource reconnects
HOLD = 25.0  # seconds a long poll waits for a newer tick before answering 204
IDLE = HOLD + 5  # seconds a keep-alive connection may wait for its next request


@dataclass
class Counts:
    """Bytes this server's sockets moved, and the requests it answered."""

    sent: int = 0
    received: int = 0
    requests: int = 0


class _Feed:
    """The newest frame and its tick; wakes whoever waits for a newer one (on the loop)."""

    def __init__(self, frame: str) -> None:
        self.frame = frame
        self.tick: int = json.loads(frame)["tick"]
        self._waiters: set[asyncio.Future[tuple[int, str] | None]] = set()

    def on_frame(self, frame: str) -> None:
        self.frame, self.tick = frame, json.loads(frame)["tick"]
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result((self.tick, frame))

    def after(self, tick: int | None) -> asyncio.Future[tuple[int, str] | None]:
        """A future for the first frame other than ``tick``'s (now, if the newest is).

        Ticks only grow, so "other" is "newer", except for a tick from before the server
        restarted (from the future, as this server counts): that client needs the current
        state at once, not after billions of ticks. None if the asker gives up (see
        :meth:`give_up`).
        """
        waiter: asyncio.Future[tuple[int, str] | None] = asyncio.get_running_loop().create_future()
        if tick is None or self.tick != tick:
            waiter.set_result((self.tick, self.frame))
        else:
            self._waiters.add(waiter)
        return waiter

    @staticmethod
    def give_up(waiter: asyncio.Future[Any] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _BallHandler(RequestHandler):
    feed: _Feed

    def initialize(self, feed: _Feed, counts: Counts) -> None:
        self.feed, self.counts = feed, counts
        self._waiting: asyncio.Future[tuple[int, str] | None] | None = None
        self.stopping = False

    def prepare(self) -> None:
        self.counts.requests += 1
        self.set_header("Cache-Control", "no-store")  # a cached state is a stale state

    def compute_etag(self) -> None:
        # An ETag lets a cache revalidate; a state that changes 60 times a second is never
        # revalidated, so the header would be bytes for nothing on every long poll.
        return None

    def on_connection_close(self) -> None:
        # The client went away while its request was held: stop holding it.
        _Feed.give_up(self._waiting)

    def tick_from(self, value: str | None, name: str) -> int | None:
        """``value`` as a tick, None if absent; HTTP 400 if it is not a whole number."""
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise HTTPError(
                400,
                f"{name} must be a whole number, the tick you have (as in ?since=41); "
                f"got {value[:40]!r}",
            ) from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # A sentence in the protocol's error shape, not tornado's HTML page.
        error = kwargs.get("exc_info", (None, None, None))[1]
        message = error.log_message if isinstance(error, HTTPError) else None
        self.set_header("Content-Type", "application/json")
        code = "bad_since" if status_code == 400 else "http_error"
        self.finish({"type": "error", "code": code, "message": message or self._reason})

    async def next_state(
        self, since: int | None, timeout: float | None = None
    ) -> tuple[int, str] | None:
        """The first (tick, frame) after tick ``since``; None if the client left, the
        ``timeout`` passed, or the server's loop is stopping (then ``stopping`` is set)."""
        self._waiting = self.feed.after(since)
        try:
            done, _ = await asyncio.wait({self._waiting}, timeout=timeout)
        except asyncio.CancelledError:
            # The workshop server stopped before this one, and its loop cancels what is
            # left: end quietly. (Raised on, tornado would log an error it cannot send.)
            self.stopping = True
            return None
        finally:
            _Feed.give_up(self._waiting)
        return self._waiting.result() if done else None

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Into the server's log, never onto stderr (a notebook cell would show it); a
        # client's mistake is answered, not a warning (a loop of bad requests would flood).
        level = logging.DEBUG if isinstance(value, HTTPError) else logging.WARNING
        logger.log(level, "%s %s: %r", self.request.method, self.request.uri[:100], value)


class _NotFound(_BallHandler):
    """Any other path: 404 and where the ball is."""

    def prepare(self) -> None:
        super().prepare()
        raise HTTPError(
            404, "No such path. The ball is at /ball/events (SSE) and /api/ball/poll?since=N"
        )


class _Events(_BallHandler):
    """``GET /ball/events``: Server-Sent Events, an ``id:`` and a ``data:`` per tick."""

    def initialize(self, feed: _Feed, counts: Counts, stall: float = STALL_TIMEOUT) -> None:
        super().initialize(feed, counts)
        self.stall = stall

    async def get(self) -> None:
        since = self.tick_from(self.request.headers.get("Last-Event-ID"), "Last-Event-ID")
        self.set_header("Content-Type", "text/event-stream")
        # A reconnecting EventSource sends Last-Event-ID: the newest state is all it needs
        # (a state stream conflates; a chat would replay what it missed).
        self.write(f"retry: {RETRY_MS}\n\n")
        # The headers now: the stream is open (EventSource's onopen).
        if not await self._flush():
            return
        while True:
            newest = await self.next_state(since)
            if newest is None:
                return  # the client left, or the server is stopping: end the stream
            since, frame = newest
            self.write(f"id: {since}\ndata: {frame}\n\n")
            # A slow client: ticks pass meanwhile, it gets the newest.
            if not await self._flush():
                return

    async def _flush(self) -> bool:
        """Send what is written; False if the client left, or took nothing for ``stall``
        seconds (then its connection is closed: it holds a slot, and reads nothing)."""
        flushed = self.flush()
        try:
            if flushed.done():  # the kernel took it all: no timer (one per frame and
                flushed.result()  # stream would pin the loop's heap, and memory with it)
            else:
                await asyncio.wait_for(asyncio.shield(flushed), self.stall)
        except StreamClosedError:
            return False
        except TimeoutError:
            flushed.add_done_callback(lambda done: done.cancelled() or done.exception())
            logger.info(
                "%s closed: its SSE stream read nothing for %g s",
                self.request.remote_ip,
                self.stall,
            )
            self.request.connection.stream.close()  # type: ignore[attr-defined]
            return False
        return True


class _LongPoll(_BallHandler):
    """``GET /api/ball/poll?since=N``: the first state newer than tick N, held until then."""

    def initialize(self, feed: _Feed, counts: Counts, hold: float = HOLD) -> None:
        super().initialize(feed, counts)
        self.hold = hold

    async def get(self) -> None:
        # One state per answer; a request per update (what a long poll costs).
        since = self.tick_from(self.get_query_argument("since", None), "since")
        newest = await self.next_state(since, timeout=self.hold)
        if self.request.connection.stream.closed():  # type: ignore[attr-defined]
            return
        if self.stopping:
            self.set_status(503)
            self.finish("The server is stopping.\n")
        elif newest is None:
            self.set_status(204)  # nothing newer in `hold` seconds: ask again
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(newest[1])


@dataclass(eq=False)
class _Peer:
    """One TCP connection, as :class:`~workshop_lib.app.limits.Limits` counts it."""

    remote_address: tuple[Any, ...] | None


def _refusal(status: int, phrase: str, code: str, message: str) -> bytes:
    body = json.dumps({"type": "error", "code": code, "message": message.strip()}).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 10\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _close(stream: IOStream, written: asyncio.Future[None]) -> None:
    if not written.cancelled():
        written.exception()  # a client gone before its refusal: nothing to say to it
    stream.close()


class _CountingHTTPServer(HTTPServer):
    """Counts every byte; admits each connection under the workshop server's limits."""

    counts: Counts
    limits: Limits | None = None
    trimmer: Trimmer | None = None
    peers: dict[IOStream, _Peer]  # admitted connections, released on close

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        peer = _Peer(address if isinstance(address, tuple) else None)
        if self.limits is not None:
            refusal = self.limits.admit(peer)  # type: ignore[arg-type]
            if refusal is not None:
                status = int(refusal.status)
                code = "too_many_connections" if status == 429 else "server_full"
                logger.debug("%s refused (%d): %s", address, status, refusal.reason)
                written = stream.write(
                    _refusal(status, refusal.status.phrase, code, refusal.explanation)
                )
                written.add_done_callback(lambda done: _close(stream, done))
                return
            self.peers[stream] = peer
        # Small kernel buffers, as for the WebSocket connections: a client that does not
        # read is seen at once (and held to them), not after megabytes.
        with contextlib.suppress(AttributeError, OSError):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                stream.socket.setsockopt(socket.SOL_SOCKET, option, connections.BUFFERS)
        # The two calls through which every byte of this connection passes.
        read_from_fd, write_to_fd = stream.read_from_fd, stream.write_to_fd
        counts = self.counts

        def counted_read(buf: bytearray | memoryview) -> int | None:
            n = read_from_fd(buf)
            counts.received += n or 0
            return n

        def counted_write(data: memoryview) -> int:
            n = write_to_fd(data)
            counts.sent += n
            return n

        stream.read_from_fd, stream.write_to_fd = counted_read, counted_write  # type: ignore[method-assign]
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        peer = self.peers.pop(getattr(server_conn, "stream", None), None)  # type: ignore[arg-type]
        if peer is not None and self.limits is not None:
            self.limits.release(peer)  # type: ignore[arg-type]
        if self.trimmer is not None:
            self.trimmer.closed()


def _log_request(handler: RequestHandler) -> None:
    logger.debug(
        "%d %s %s", handler.get_status(), handler.request.method, handler.request.uri[:100]
    )


class HttpPush:
    """The SSE and long-poll server for one workshop server's ball (see the module)."""

    def __init__(
        self,
        server: Any,
        host: str,
        port: int,
        hold: float = HOLD,
        idle: float = IDLE,
        stall: float = STALL_TIMEOUT,
    ) -> None:
        self._server = server
        self.host = host
        self._requested_port = port
        self.hold = hold
        self.idle = idle  # seconds a keep-alive connection may wait for its next request
        self.stall = stall  # seconds an SSE frame may wait for a client that does not read
        self.counts = Counts()
        self.port = 0
        self._http: _CountingHTTPServer | None = None
        self._feed: _Feed | None = None
        self._sockets: list[socket.socket] = []

    async def _start(self) -> None:
        lesson = self._server.lesson("ball")
        self._feed = feed = _Feed(lesson.frame)
        args = {"feed": feed, "counts": self.counts}
        app = Application(
            [
                ("/ball/events", _Events, {**args, "stall": self.stall}),
                ("/api/ball/poll", _LongPoll, {**args, "hold": self.hold}),
            ],
            default_handler_class=_NotFound,
            default_handler_args=args,
            log_function=_log_request,
        )
        self._http = _CountingHTTPServer(app, idle_connection_timeout=self.idle)
        self._http.counts = self.counts
        self._http.peers = {}
        app_ = getattr(self._server, "app", None)
        if app_ is not None:  # the workshop server's own limits and memory trimmer
            self._http.limits, self._http.trimmer = app_.limits, app_.trimmer
        self._sockets = bind_sockets(self._requested_port, self.host, family=socket.AF_INET)
        self._http.add_sockets(self._sockets)
        self.port = self._sockets[0].getsockname()[1]
        lesson.frame_listeners.append(feed.on_frame)

    async def _stop(self) -> None:
        lesson = self._server.lesson("ball")
        if self._feed is not None and self._feed.on_frame in lesson.frame_listeners:
            lesson.frame_listeners.remove(self._feed.on_frame)
        if self._http is not None:
            self._http.stop()  # no new connections
            await self._http.close_all_connections()  # held requests give up (see above)
            self._http = None

    def url(self, path: str = "/ball/events") -> str:
        """``http://host:port/path`` on this server."""
        return f"http://{self.host}:{self.port}{path}"

    @property
    def bytes_sent(self) -> int:
        """Bytes written to every client so far, status lines and headers included."""
        return self.counts.sent

    @property
    def bytes_received(self) -> int:
        """Bytes read from every client so far (their requests, headers included)."""
        return self.counts.received

    def stop(self) -> None:
        """Close every connection and stop listening. Safe to call twice.

        Best before the workshop server stops; after, it still closes the listening socket.
        """
        if self._http is None:
            return
        if self._server.running:
            self._server.run(self._stop(), timeout=5)
        else:  # its loop is gone: nothing runs there any more, so only the socket is left
            for listening in self._sockets:
                listening.close()
            self._http = None

    def __enter__(self) -> HttpPush:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        # No URL: a notebook would show it as a link, which behind a hub leads nowhere (the
        # kernel measures these endpoints; no browser needs them).
        state = f"on {self.host} port {self.port}" if self._http is not None else "stopped"
        return f"<HttpPush {state}: /ball/events (SSE), /api/ball/poll?since= (long poll)>"


def serve_http_push(
    server: Any,
    port: int = 0,
    host: str | None = None,
    hold: float = HOLD,
    *,
    idle: float = IDLE,
    stall: float = STALL_TIMEOUT,
) -> HttpPush:
    """Serve ``server``'s ball as SSE and long polling, on ``port`` (0: any free one).

    ``server`` is a running local :class:`~workshop_lib.WorkshopServer` with the ball
    lesson; this runs on its loop, so stop it before the server. Its connections count
    against ``server``'s limits; ``idle`` and ``stall``: see the module.
    """
    if not hasattr(server, "run") or not getattr(server, "running", False):
        raise RuntimeError("serve_http_push needs a running local server (start_server())")
    push = HttpPush(server, host or server.host, port, hold, idle, stall)
    server.run(push._start(), timeout=10)
    return push
