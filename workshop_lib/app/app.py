"""One server, one port: WebSocket lessons by path, the browser client and small HTTP endpoints.

websockets is not a web framework, but its ``process_request`` hook sees every HTTP request
before the WebSocket handshake. A request that asks for an upgrade goes on to the lesson
routed at its path; any other request gets a plain HTTP response from here::

    app = App(default_lessons(), ServerOptions(token=token))  # lessons, and the settings
    app.route("/shout", shout_handler)   # a learner's handler at a path
    server = await app.serve("127.0.0.1", 0)
    ...
    await app.shutdown()                 # after server.close(): stops the lessons

Files go to :class:`~workshop_lib.app.static.StaticFiles`; an admitted WebSocket's
:class:`Route` is resolved once, at its handshake, and every later step reads it.

The app knows lessons only through :class:`~workshop_lib.lesson.Lesson`: it names none, and
what it enforces (connection limits, buffer sizes, bad requests answered with a status, one
log line per event) holds for every lesson's paths alike.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import quote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import MultipleValuesError
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from .. import __version__
from ..lesson import Handler, JsonRoute, Lesson, Page, Post, start_lesson, stop_lesson
from ..server.load import LoopLoad
from ..server.logs import WEBSOCKETS_LOGGER_NAME, Tally, peer
from ..server.memory import Trimmer
from ..server.options import DEFAULT_MAX_SIZE, ServerOptions
from ..wire.closing import announce_too_big, close_sent
from . import bodies
from .auth import RedactFilter, Refusal, tokens_match
from .connections import Connections
from .shell import static_folder
from .static import StaticFiles

__all__ = ["DEFAULT_MAX_SIZE", "MAX_QUEUE", "WRITE_LIMIT", "App", "Handler", "Route"]

# What the server holds for a client that sends and does not read (the echo's worst case):
# one received message waiting while the handler works on another (MAX_QUEUE frames queued
# before websockets stops reading that socket: backpressure, the client's own sends then
# block), and WRITE_LIMIT bytes unsent before a handler's send() waits; the kernel's buffers
# are capped too (connections.BUFFERS). With 60 KB messages that is about 250 KB a client,
# however much it sends (websockets' defaults, 16 frames and 32 KiB, with the kernel's
# megabytes, let it be more), and it goes back to the system when it leaves (memory.Trimmer).
MAX_QUEUE = 1
WRITE_LIMIT = 16 * 1024

# Plain HTTP answers these methods; anything else gets 405 with this Allow header.
_HTTP_METHODS = ("GET", "HEAD")

logger = logging.getLogger("workshop_lib.app.app")


@dataclass(frozen=True, slots=True)
class Route:
    """Where one WebSocket connection goes, resolved once at its handshake and kept for it:
    every later step (the subprotocol, the first-message login, the handler) reads this."""

    path: str  # the request's path, without its query
    handler: Handler
    owner: Lesson | None  # the lesson that serves the path; None for a route of one's own
    credential: str | None  # the token the owner found outside Authorization, if any


class App:
    """Routes WebSocket paths to lesson handlers and answers plain HTTP requests.

    ``options``: the server's settings (:class:`~workshop_lib.server.options.ServerOptions`);
    ``static``: the shell's folder (default: the course's ``static/``); ``proxied``: browsers
    reach the server through Jupyter's proxy (see :meth:`ServerOptions.guard`).
    """

    def __init__(
        self,
        lessons: Sequence[Lesson] = (),
        options: ServerOptions | None = None,
        *,
        static: Traversable | None = None,
        proxied: bool = False,
    ) -> None:
        self.options = options if options is not None else ServerOptions()
        self.guard = self.options.guard(proxied=proxied)
        self.limits = self.options.limits()
        self.trimmer = Trimmer()
        self.connections = Connections(on_lost=self._lost)
        self.load = LoopLoad()
        # Events that come in floods: a line each for the first few, then a count.
        self._refused = Tally(logger, "connections refused")
        self._ended = Tally(logger, "connections ended", burst=20)
        self.static = StaticFiles(static if static is not None else static_folder(), self._refused)
        self.lessons: dict[str, Lesson] = {}
        self.routes: dict[str, Handler] = {}
        self._owners: dict[str, Lesson] = {}  # WebSocket path -> the lesson serving it
        self._http_owners: dict[str, Lesson] = {}  # a lesson's HTTP path -> that lesson
        # Each admitted connection's route; gone with the connection.
        self._resolved: weakref.WeakKeyDictionary[ServerConnection, Route] = (
            weakref.WeakKeyDictionary()
        )
        # Small JSON endpoints: path -> function returning the payload.
        self.json_routes: dict[str, JsonRoute | Post] = {
            "/healthz": self._health,
            "/api/stats": self._stats,  # for the instructor's page (static/room.js)
            "/api/pages": self._pages,  # the browser client's navigation (static/main.js)
        }
        # Open to anyone: how the server is, in counts, never a lesson's data. Every other
        # JSON route is a lesson's, and a token server wants the token for it, as it does
        # for the same lesson's WebSocket.
        self._public_routes = frozenset(self.json_routes)
        for lesson in lessons:
            self._add_lesson(lesson)
        self.clients: Counter[str] = Counter()  # open connections per path
        self.served: Counter[str] = Counter()  # connections per path since the start
        self._redact: RedactFilter | None = None  # keeps the token out of every log line

    def _add_lesson(self, lesson: Lesson) -> None:
        if not lesson.name or lesson.name in self.lessons:
            raise ValueError(f"{lesson!r}: each lesson needs a name, and its own")
        for path in (*lesson.websocket_routes(), *lesson.http_routes()):
            if path in self.routes or path in self.json_routes:
                raise ValueError(f"{lesson!r} wants {path}, which another route already serves")
        if lesson.pages:
            lesson.check_pages()  # a missing page module: said now, not as a blank page
            self.static.add_lesson(lesson.name, lesson.folder())
        self.lessons[lesson.name] = lesson
        self.routes.update(lesson.websocket_routes())
        self._owners.update(dict.fromkeys(lesson.websocket_routes(), lesson))
        self.json_routes.update(lesson.http_routes())
        self._http_owners.update(dict.fromkeys(lesson.http_routes(), lesson))

    def lesson(self, name: str) -> Lesson:
        """The running lesson called ``name``, e.g. ``app.lesson("ball").state``."""
        try:
            return self.lessons[name]
        except KeyError:
            raise KeyError(
                f"this server runs no lesson {name!r}; it runs {', '.join(self.lessons) or 'none'}"
            ) from None

    @property
    def pages(self) -> list[Page]:
        """The lessons' browser pages, in the lessons' order."""
        return [page for lesson in self.lessons.values() for page in lesson.pages]

    def route(self, path: str, handler: Handler) -> None:
        """Serve WebSocket connections to ``path`` with ``handler`` (replaces any previous)."""
        if not path.startswith("/"):
            raise ValueError(f"a route is a path starting with '/', not {path!r}")
        self.routes[path] = handler
        self._owners.pop(path, None)

    async def serve(self, host: str, port: int) -> Server:
        """Listen on ``host:port`` (0 picks a free port) and return the websockets server.

        Also starts the lessons (the ball's ticker), before the first client can connect.
        """
        for lesson in self.lessons.values():
            await start_lesson(lesson)
        server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            create_connection=self._connection,
            # websockets enforces the size limit itself (the frame's header is enough to
            # refuse it, nothing is buffered); _connection makes it say so in band first.
            max_size=self.options.max_size,
            # SO_REUSEPORT: several processes listen on one port and the kernel spreads new
            # connections over them (Linux, BSD, macOS; not Windows). docs/scaling.md.
            reuse_port=self.options.reuse_port or None,
            max_queue=MAX_QUEUE,
            write_limit=WRITE_LIMIT,
            # No permessage-deflate: the lessons' messages are small JSON events, which
            # deflate barely shrinks, while compressing each one once per client costs
            # about 2.5x the CPU of the whole send (docs/architecture.md, "Compression").
            compression=None,
            # Ctrl-C and stop() must not wait long for a peer that never answers the close.
            close_timeout=2,
            # A client that finishes no handshake within 10 s is dropped.
            open_timeout=10,
            # Pings find dead peers (a laptop that slept, a cable pulled): no pong within
            # ping_interval seconds of a ping closes the connection with 1011.
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.ping_interval,
            logger=logging.getLogger(WEBSOCKETS_LOGGER_NAME),
        )
        await self.load.start()
        # websockets' debug log prints each handshake's headers and each frame: the one
        # place a token, or a wrong key, could be quoted (this course's own modules never
        # log them).
        self._redact = RedactFilter(self.guard.token)
        logging.getLogger(WEBSOCKETS_LOGGER_NAME).addFilter(self._redact)
        return server

    def _connection(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> ServerConnection:
        """websockets' ``create_connection``: a registered connection whose 1009 is announced.

        A close code may not survive a proxy, so a message over ``max_size`` is answered
        with an ``error`` event (``message_too_big``) before the close (closing.py).
        """
        bodies.install(protocol, self._body_limit)
        return self.connections.factory(announce_too_big(protocol), *args, **kwargs)

    def _body_limit(self, method: str, path: str) -> int | None:
        """The largest body a request may carry (a POST route's), or None: no body."""
        route = self.json_routes.get(path)
        return route.max_body if method == "POST" and isinstance(route, Post) else None

    def _lost(self, connection: ServerConnection) -> None:
        """A TCP connection is gone: free its slot; after a wave, give memory back."""
        self.limits.release(connection)
        self.trimmer.closed()

    async def shutdown(self) -> None:
        """Stop the lessons (after the server stopped listening)."""
        self.trimmer.cancel()
        await self.load.stop()
        self._refused.flush()  # a flood's summary, even when the server stops mid-window
        self._ended.flush()
        for lesson in self.lessons.values():
            try:
                await stop_lesson(lesson)
            except Exception:  # one lesson's bug must not keep the others running
                logger.exception("lesson %r failed to stop", lesson.name)
        if self._redact is not None:
            logging.getLogger(WEBSOCKETS_LOGGER_NAME).removeFilter(self._redact)

    # -- HTTP ---------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # The request target is a path and a query; urlsplit() would take "//x" for an
        # address (and raise on "//[").
        path = request.path.partition("?")[0]
        if _wants_websocket(request):
            refusal = self._check_upgrade(connection, request, path)
            return None if refusal is None else self._refuse(connection, path, refusal)
        route = self.json_routes.get(path)
        if request.method == "POST" and isinstance(route, Post):
            return self._post(connection, request, path, route)
        if request.method not in _HTTP_METHODS:
            response = connection.respond(
                http.HTTPStatus.METHOD_NOT_ALLOWED,
                f"{request.method[:20]} is not served here: this server only answers GET and "
                "HEAD (and POST where a route takes it).\n",
            )
            response.headers["Allow"] = ", ".join(_HTTP_METHODS)
            return response
        response = self._answer(connection, request, path)
        if request.method == "HEAD":
            response.body = b""  # the GET's headers, Content-Length included, and no body
        return response

    def _check_upgrade(
        self, connection: ServerConnection, request: Request, path: str
    ) -> Refusal | None:
        """Why this WebSocket upgrade is refused, or None once it is admitted: then it is
        counted, and its :class:`Route` is kept for the connection."""
        if request.method != "GET":
            return Refusal(
                http.HTTPStatus.METHOD_NOT_ALLOWED,
                "A WebSocket handshake is a GET request.\n",
                f"{request.method[:20]} upgrade",
            )
        owner = self._owners.get(path)
        try:
            # Where the path's lesson finds a token outside Authorization (Realtime's api-key).
            credential = owner.credential(request) if owner is not None else None
            key = _bearer(request) or credential
            issuer = self._issuer(key)
            if owner is not None and path in owner.keyed_routes and issuer is not owner:
                refusal = self.guard.check_handshake(
                    request, credential, issued=True
                ) or self._keyed(owner, path, key)
            else:
                refusal = self.guard.check_handshake(request, credential, issued=issuer is not None)
            if refusal is None and issuer is not None:
                refusal = self._check_issued(issuer, key, path, owner)
        except MultipleValuesError as exc:  # a lesson's credential() read a repeated header
            name = exc.args[0] if exc.args else "some"
            refusal = Refusal(
                http.HTTPStatus.BAD_REQUEST, f"Send one {name} header.\n", f"repeated {name}"
            )
        if refusal is not None:
            self.limits.note_refusal(refusal.reason)
            return refusal
        handler = self.routes.get(path)
        if handler is None:
            known = ", ".join(sorted(self.routes))
            return Refusal(
                http.HTTPStatus.NOT_FOUND,
                f"No WebSocket endpoint at {path}. Endpoints on this server: {known}\n",
                "no such path",
            )
        # Last, because it counts the connection in: anything refused above costs no slot.
        refusal = self.limits.admit(connection)
        if refusal is not None:
            return refusal
        if owner is not None and owner.max_size is not None:
            # A route may take bigger messages than the server's default (Realtime's audio):
            # set before the 101, so the first frame the client sends is read with it.
            connection.protocol.max_message_size = owner.max_size
        self._resolved[connection] = Route(path, handler, owner, credential)
        return None

    def _refuse(self, connection: ServerConnection, path: str, refusal: Refusal) -> Response:
        """The HTTP answer to a refused upgrade, and its line in the log (floods: a count)."""
        response = connection.respond(refusal.status, refusal.explanation)
        if refusal.status == http.HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = "Bearer"
        elif refusal.status == http.HTTPStatus.METHOD_NOT_ALLOWED:
            response.headers["Allow"] = "GET"
        elif refusal.status in (
            http.HTTPStatus.TOO_MANY_REQUESTS,
            http.HTTPStatus.SERVICE_UNAVAILABLE,
        ):
            response.headers["Retry-After"] = "10"
        if refusal.status != http.HTTPStatus.NOT_FOUND:  # a mistyped path is not an event
            self._refused.log(
                logging.WARNING,
                "%s refused on %s (%d): %s",
                peer(connection),
                path[:100],
                refusal.status,
                refusal.reason,
                kind=refusal.reason,
            )
        return response

    def _answer(self, connection: ServerConnection, request: Request, path: str) -> Response:
        """The answer to a plain GET of ``path``."""
        route = self.json_routes.get(path)
        if isinstance(route, Post):
            response = connection.respond(
                http.HTTPStatus.METHOD_NOT_ALLOWED, f"{path} answers POST only.\n"
            )
            response.headers["Allow"] = "POST"
            return response
        if route is not None:
            if refusal := self._check_request(request, path):
                return self._refuse(connection, path, refusal)
            return _json(connection, route())
        file = self.static.respond(connection, path)
        if file is not None:
            return file
        return connection.respond(
            http.HTTPStatus.NOT_FOUND,
            f"Not found: {path[:200]}. The browser client is at /, the health check at /healthz.\n",
        )

    def _check_request(self, request: Request, path: str) -> Refusal | None:
        """Why a plain HTTP request for ``path`` is refused: a lesson's routes want the
        token on a token server, and never take a key a lesson issued (those open that
        lesson's WebSockets only)."""
        if path in self._public_routes:
            return None
        owner = self._http_owners.get(path)
        credential = owner.credential(request) if owner is not None else None
        key = _bearer(request) or credential
        if owner is not None and path in owner.keyed_routes:
            if len(request.headers.get_all("Authorization")) > 1:
                return Refusal(
                    http.HTTPStatus.BAD_REQUEST, "Send one Authorization header.\n", "2 headers"
                )
            if key and owner.owns_key(key):
                explanation = owner.check_key(key)
                if explanation is None:
                    return None
                return Refusal(http.HTTPStatus.UNAUTHORIZED, explanation, "expired or unknown key")
            return self._keyed(owner, path, key)
        if (issuer := self._issuer(key)) is not None:
            return Refusal(
                http.HTTPStatus.UNAUTHORIZED,
                f"This key opens the {issuer.name} lesson's WebSocket only; {path} needs the "
                "server's token.\n",
                "issued key on an HTTP route",
            )
        return self.guard.check_request(request, credential)

    def _keyed(self, owner: Lesson, path: str, key: str | None) -> Refusal:
        """The refusal of a keyed route (one only ``owner``'s key opens) without that key:
        403 for the server's token (known, but not allowed here), else 401."""
        token = self.guard.token
        if key and token is not None and tokens_match(key, token):
            return Refusal(
                http.HTTPStatus.FORBIDDEN,
                f"{path[:100]} is not for the server's token: it needs the {owner.name} "
                "key (the instructor's).\n",
                "token on a keyed route",
            )
        return Refusal(
            http.HTTPStatus.UNAUTHORIZED,
            f"{path[:100]} needs the {owner.name} key (the instructor's): send "
            '"Authorization: Bearer <key>".\n',
            "no key" if not key else "wrong key",
        )

    def _post(
        self, connection: ServerConnection, request: Request, path: str, route: Post
    ) -> Response:
        """The answer to a POST of a route that takes one."""
        # A foreign site's page may send a POST from its visitor's browser (no preflight
        # without custom headers): refused as its WebSocket would be.
        origin = request.headers.get("Origin")
        if origin is not None and not self.guard.origin_allowed(
            origin, request.headers.get("Host")
        ):
            refusal = Refusal(
                http.HTTPStatus.FORBIDDEN,
                f"Origin {origin[:100]} may not POST here.\n",
                "foreign Origin",
            )
            return self._refuse(connection, path, refusal)
        if refusal := self._check_request(request, path):
            return self._refuse(connection, path, refusal)
        body = bodies.body_of(connection.protocol)
        if isinstance(body, bodies.TooLarge):
            return connection.respond(
                http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{path} takes a body of at most {body.limit} bytes, not {body.length}.\n",
            )
        try:
            status, payload = route.answer(body)
        except Exception:  # a lesson's bug: a 500 and the log, never a dropped connection
            logger.exception("POST %s failed", path)
            return connection.respond(
                http.HTTPStatus.INTERNAL_SERVER_ERROR, f"POST {path} failed; see the log.\n"
            )
        return _json(connection, payload, status)

    def _health(self) -> dict[str, object]:
        # What the lessons say of what they depend on (a Redis): "degraded" if one is away,
        # while the server itself still answers.
        lessons = {name: h for name, lesson in self.lessons.items() if (h := lesson.health())}
        degraded = any(value == "unreachable" for h in lessons.values() for value in h.values())
        return {
            "status": "degraded" if degraded else "ok",
            **({"lessons": lessons} if lessons else {}),
            "server": "workshop_lib",
            "version": __version__,
            "pid": os.getpid(),
            "routes": sorted(self.routes),
            "pages": self._pages(),
            # Lets a page ask for a token before it connects, instead of after a 4001.
            "auth": "token" if self.guard.token is not None else "none",
        }

    def _stats(self) -> dict[str, object]:
        """Counts for a room's overview: no names, no messages, nothing a token protects."""
        return {
            "ts": time.time(),
            "clients": {path: n for path, n in sorted(self.clients.items()) if n},
            "connections": dict(sorted(self.served.items())),
            # Refusals and load: 2,000 clients that all read keep every buffer empty, so
            # only the loop's lag and the refusals show that the server is overrun.
            "limits": self.limits.stats(),
            "load": self.load.stats(),
            **{name: stats for name, lesson in self.lessons.items() if (stats := lesson.stats())},
        }

    def client_count(self) -> int:
        """Open WebSocket connections (read it on the server's loop: the loop changes it)."""
        return sum(self.clients.values())

    def _pages(self) -> list[dict[str, str]]:
        """Each page, and the url of its module relative to the site's root."""
        return [
            {
                "name": page.name,
                "title": page.title,
                "module": page.module,
                "url": f"lessons/{quote(lesson.name, safe='')}/{quote(page.module)}",
            }
            for lesson in self.lessons.values()
            for page in lesson.pages
        ]

    # -- WebSocket ------------------------------------------------------------------------------

    def _issuer(self, key: str | None) -> Lesson | None:
        """The lesson that issues keys of ``key``'s form (Realtime's ``ek_``), if any."""
        if not key:
            return None
        return next((lesson for lesson in self.lessons.values() if lesson.owns_key(key)), None)

    def _check_issued(
        self, issuer: Lesson, key: str, path: str, owner: Lesson | None
    ) -> Refusal | None:
        """Why a key ``issuer`` made may not open ``path``, which ``owner`` serves (its own
        routes only, while valid)."""
        if owner is not issuer:
            return Refusal(
                http.HTTPStatus.UNAUTHORIZED,
                f"This key opens the {issuer.name} lesson's routes only "
                f"({', '.join(sorted(issuer.websocket_routes()))}), not {path[:100]}.\n",
                "issued key on another route",
            )
        explanation = issuer.check_key(key)
        if explanation is None:
            return None
        return Refusal(http.HTTPStatus.UNAUTHORIZED, explanation, "expired or unknown key")

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """The first subprotocol the path's lesson speaks and the client offered, if any."""
        route = self._resolved.get(connection)  # process_request admitted it, so it has one
        owner = route.owner if route is not None else None
        spoken = owner.subprotocols if owner is not None else ()
        return next((Subprotocol(p) for p in spoken if p in offered), None)

    async def _handle(self, connection: ServerConnection) -> None:
        route = self._resolved[connection]  # _process_request admitted only routed paths
        path = route.path
        client = peer(connection)
        if self.guard.needs_first_message(
            connection, route.credential
        ) and not await self.guard.authenticate(connection):
            self.limits.note_refusal("no auth event")
            # What the server sent: behind a proxy that cuts the line, the connection's own
            # close_code is 1006.
            code, reason = close_sent(connection)
            self._refused.log(
                logging.WARNING,
                "%s refused on %s (close %s): %s",
                client,
                path,
                code,
                reason or "no valid auth event",
                kind="no auth event",
            )
            return
        self.clients[path] += 1
        self.served[path] += 1
        started = time.monotonic()
        try:
            await route.handler(connection)
        except ConnectionClosed:
            pass  # the client went away mid-message: ordinary on a network, not an error
        except Exception as exc:
            # A bug in a lesson (or in a learner's exercise handler): log it for the log
            # widget, and tell the client why it is being closed.
            logger.exception("handler for %s failed", path)
            reason = f"handler failed: {type(exc).__name__}"[:120]
            await connection.close(CloseCode.INTERNAL_ERROR, reason)
        except (SystemExit, KeyboardInterrupt, GeneratorExit, asyncio.CancelledError) as exc:
            # A learner's handler that calls sys.exit() or raises one of these ends its own
            # connection, never the server (they would stop the server's loop, or leave
            # the task's end unlogged). A cancellation the server asked for goes on.
            task = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                raise
            logger.error(
                "handler for %s raised %s; its connection is closed, the server goes on",
                path,
                _raised(exc),
            )
            await connection.close(CloseCode.INTERNAL_ERROR, f"handler raised {_raised(exc)}")
        finally:
            self.clients[path] -= 1
            # One line per connection, when it ends: a churning room reads as a count.
            self._ended.log(
                logging.INFO,
                "%s connected to %s, left %s after %.1f s (close code %s)",
                client,
                path,
                path,
                time.monotonic() - started,
                connection.close_code if connection.close_code is not None else "none",
                kind=path,
            )


def _raised(exc: BaseException) -> str:
    """``SystemExit(3)``-like, short enough for a close reason."""
    return f"{type(exc).__name__}({', '.join(map(repr, exc.args))})"[:100]


def _wants_websocket(request: Request) -> bool:
    upgrade = ",".join(request.headers.get_all("Upgrade"))
    return "websocket" in upgrade.lower()


def _bearer(request: Request) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if the request has one."""
    headers = request.headers.get_all("Authorization")
    if len(headers) != 1:  # two: the guard refuses the request
        return None
    scheme, _, given = headers[0].partition(" ")
    return (given.strip() or None) if scheme.lower() == "bearer" else None


def _json(connection: ServerConnection, payload: object, status: int = 200) -> Response:
    response = connection.respond(http.HTTPStatus(status), json.dumps(payload) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"  # live state: never a cached copy
    return response
