"""Start and stop workshop servers from a notebook cell; the registry that keeps them tidy.

    from workshop_lib import start_server
    server = start_server()     # port 8765, or a free one with a warning if 8765 is taken
    server                      # rich repr: URLs and links to the browser pages
    server.stop()               # idempotent; `with start_server(port=0) as s:` works too

Each server owns a :class:`~workshop_lib.server.loop.LoopThread`. Servers are registered by
name, so re-running the cell that starts one first stops the previous one of that name
(no "address already in use"), and ``atexit`` stops whatever is left (registered by the first
server started, as the rest of :func:`_set_up_process`, not at import).
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import html
import inspect
import logging
import threading
import warnings
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar, Unpack

from websockets.asyncio.server import Server

from ..app.app import App
from ..app.auth import is_loopback
from ..app.links import Links, Proxy, detect_proxy
from ..lesson import Handler, Lesson
from . import first_use
from .handle import ServerHandle
from .loop import LoopThread
from .options import DEFAULT_HOST, ServerOptions, ServerSettings, default_per_address
from .ports import describe_port_holder

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "PortFallbackWarning",
    "PortInUseError",
    "ServerOptions",
    "WorkshopServer",
    "default_per_address",
    "running_servers",
    "start_server",
    "stop_server",
]

DEFAULT_PORT = 8765  # the original module's ws://localhost:8765

T = TypeVar("T")
logger = logging.getLogger("workshop_lib.server.start")


class PortInUseError(OSError):
    """The port asked for is taken; the message says by whom, as far as can be told."""


class PortFallbackWarning(UserWarning):
    """The default port was taken, so the server listens on another one."""


_registry: dict[str, WorkshopServer] = {}
_registry_lock = threading.RLock()
# Ports of servers stopped in this process, and their names: a cell that connects after the
# clean-up is told which server it was (workshop_lib.notebook.accidents).
_stopped: dict[int, str] = {}


class WorkshopServer(ServerHandle):
    """A running workshop server: its addresses, its state, and how to stop it.

    Create it with :func:`start_server`, not directly.
    """

    def __init__(self, name: str, app: App, proxy: Proxy | None = None) -> None:
        self.name = name
        self.app = app
        self.host = app.options.host
        self.proxy = proxy  # how a browser reaches the port (JupyterHub's proxy), if not directly
        self.note: str | None = None  # why the port differs from the one asked for
        self._port = 0
        self._loop = LoopThread(f"workshop-server-{name}")
        self._server: Server | None = None
        self._stop_lock = threading.Lock()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def links(self) -> Links:
        """Every URL of this server (see :mod:`workshop_lib.app.links`)."""
        return Links(self.host, self._port, self.app.guard.token, tuple(self.app.pages), self.proxy)

    @property
    def running(self) -> bool:
        """True until :meth:`stop`."""
        return self._server is not None and self._loop.alive

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self, port: int, timeout: float) -> None:
        self._loop.start(timeout)
        try:
            self._server = self._loop.run(self.app.serve(self.host, port), timeout)
        except BaseException:
            self._loop.stop()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        _stopped.pop(self._port, None)
        logger.info("server %r listening on %s", self.name, self.http_url)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection (code 1001, going away), stop listening, end the thread.

        Safe to call more than once.
        """
        with self._stop_lock:
            server, self._server = self._server, None
            if server is not None and self._loop.alive:
                try:
                    self._loop.run(_close(server, self.app), timeout)
                finally:
                    self._loop.stop(timeout)
                    _stopped[self._port] = self.name
                logger.info("server %r stopped", self.name)
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]

    close = stop  # the name dask and websockets use

    def __enter__(self) -> WorkshopServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- working with the server's loop -------------------------------------------------------

    def route(self, path: str, handler: Handler) -> None:
        """Serve WebSocket connections to ``path`` with ``handler``, from now on."""
        self.app.route(path, handler)

    def lesson(self, name: str) -> Any:
        """The lesson ``name`` this server runs, e.g. ``server.lesson("ball").frames_skipped``.

        Its state lives on the server's loop: read it freely, change it with :meth:`run`.
        """
        return self.app.lesson(name)

    def client_count(self) -> int | None:
        """Open WebSocket connections, counted on the server's loop (None if it is stopped)."""
        if not self.running:
            return None
        try:
            return self._loop.run(_count(self.app), timeout=2)
        except (TimeoutError, RuntimeError):
            return None  # a loop too busy to answer in time: the repr shows no count

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the server's loop and return a concurrent future at once."""
        if not self.running:
            coro.close()
            raise RuntimeError(f"server {self.name!r} is stopped; start it again first")
        return self._loop.submit(coro)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the server's loop and return its result (errors are raised here).

        Usage: ``server.run(some_lesson_coroutine())``, for code that must touch the
        server's connections, which live only on its loop.
        """
        if not self.running:
            coro.close()
            raise RuntimeError(f"server {self.name!r} is stopped; start it again first")
        return self._loop.run(coro, timeout)

    # -- display ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.running else "stopped"
        return f"<WorkshopServer {self.name!r} {state}>"

    def _rows(self) -> list[tuple[str, str]]:
        paths = ", ".join(
            f"<code>{html.escape(self.links.ws(p))}</code>" for p in sorted(self.app.routes)
        )
        rows = [("WebSocket", paths), *super()._rows()]
        if self.proxy is not None:
            rows.insert(
                1,
                (
                    "Browser",
                    f"through Jupyter's proxy at <code>{html.escape(self.links.browse('/'))}"
                    f"</code> (picked by {html.escape(self.proxy.rule)}); the WebSocket "
                    "addresses above are for this kernel's own clients",
                ),
            )
        count = self.client_count()
        if count is not None:
            rows.append(("Clients connected", str(count)))
        if self.note:
            rows.append(("Note", f'<span style="color:#9a6700">{html.escape(self.note)}</span>'))
        return rows


async def _count(app: App) -> int:
    # A coroutine so that the count is read on the loop, which changes it: summing a dict
    # from another thread can meet it mid-change ("dictionary changed size").
    return app.client_count()


# How long stop() lets clients answer the closing handshake before it cuts them: a client
# that never reads never answers, and Ctrl-C must not wait for it.
STOP_GRACE = 1.0


async def _close(server: Server, app: App, grace: float = STOP_GRACE) -> None:
    server.close(close_connections=True)  # sends close code 1001 to every client
    # A half-sent handshake would hold wait_closed() until open_timeout (10 s): cut them.
    app.connections.abort_handshakes()
    # A client that reads nothing would hold the stop for the whole grace: cut it now.
    app.connections.abort_stalled()
    try:
        async with asyncio.timeout(grace):
            await server.wait_closed()
    except TimeoutError:
        cut = app.connections.abort_all()
        logger.info("%d connection(s) did not close within %g s, cut", cut, grace)
        try:
            async with asyncio.timeout(grace):
                await server.wait_closed()
        except TimeoutError:  # a handler that ignores its closed connection: the loop's
            logger.warning("a handler did not return; stopping anyway")  # end cancels it
    await app.shutdown()


def start_server(
    port: int | None = None,
    *,
    name: str = "workshop",
    lessons: Sequence[Lesson] | None = None,
    routes: Mapping[str, Handler] | None = None,
    options: ServerOptions | None = None,
    timeout: float = 10.0,
    **settings: Unpack[ServerSettings],
) -> WorkshopServer:
    """Start a workshop server on a background thread and return its handle.

    Usage: ``server = start_server()``; ``start_server(port=0)`` for any free port.

    ``port=None`` means 8765, falling back to a free port with a
    :class:`PortFallbackWarning` if 8765 is taken; an explicit port that is taken raises
    :class:`PortInUseError`. A running server of the same ``name`` is stopped first, so
    re-running a cell replaces its server. Startup errors are raised here, in the caller.

    ``lessons``: the lessons to run, fresh instances (default: the whole course,
    :func:`~workshop_lib.course.default_lessons`, which also takes each lesson's settings:
    ``lessons=default_lessons(ball={"rate": 25})``). ``routes`` adds WebSocket paths of your
    own, e.g. ``{"/shout": shout}``.

    The server's settings are :class:`~workshop_lib.server.options.ServerOptions`' fields,
    given as keywords (``host=``, ``token=``, ``origins=``, ``max_size=``,
    ``ping_interval=``, ``max_connections=``, ``max_per_address=``, ``reuse_port=``) or as
    one ``options=`` object (keywords then change it); ``ServerOptions.docs()`` says what
    each means. A server on any host but loopback refuses to start without a token.

    To join the room's shared server when an instructor runs one, and start your own
    otherwise: ``server = join_room_server() or start_server()``
    (:func:`~workshop_lib.server.room.join_room_server`).
    """
    _set_up_process()
    options = _options(options, settings)
    if options.token is None and not is_loopback(options.host):
        host = options.host
        raise ValueError(
            f"A server on {host!r} can be reached from other machines, so it needs a token: "
            f"start_server(host={host!r}, token=new_token()) "
            "(from workshop_lib.app.auth import new_token), or from a terminal: "
            f"python -m workshop_lib serve --host {host} --new-token"
        )
    proxy = detect_proxy()  # raises on a WORKSHOP_PUBLIC_URL that is no address
    with _registry_lock:
        previous = _registry.pop(name, None)
        if previous is not None:
            previous.stop()
        if lessons is None:
            from ..course import default_lessons  # the installed lessons (entry points)

            lessons = default_lessons()
        # Behind jupyter-server-proxy the hub's pages arrive with the hub's Origin and Host,
        # which Jupyter has already checked match; the DNS-rebinding attack the loopback rule
        # guards against would need the browser to reach this machine's loopback, which on a
        # hub it cannot. So a proxied loopback server accepts same-origin pages (docs/hubs.md).
        app = App(lessons, options, proxied=proxy is not None)
        for path, handler in (routes or {}).items():
            app.route(path, handler)

        wanted = DEFAULT_PORT if port is None else port
        server = WorkshopServer(name, app, proxy)
        try:
            server._start(wanted, timeout)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            holder = describe_port_holder(wanted)
            if port is not None:
                raise PortInUseError(
                    errno.EADDRINUSE, f"port {wanted} is already in use: {holder}"
                ) from None
            server = WorkshopServer(name, app, proxy)
            server._start(0, timeout)
            server.note = f"port {wanted} was taken, so this server uses {server.port}"
            warnings.warn(
                f"Port {wanted} is in use, so the server listens on port {server.port} "
                f"instead. Use server.url and server.http_url rather than typing the port. "
                f"({holder})",
                PortFallbackWarning,
                stacklevel=2,
            )
        _registry[name] = server
        return server


def _options(options: ServerOptions | None, settings: Mapping[str, Any]) -> ServerOptions:
    """``options`` (or the defaults) with ``settings`` applied; an unknown keyword is a
    TypeError naming the ones there are, as a misspelt keyword argument would be."""
    known = ServerOptions.docs()
    unknown = sorted(set(settings) - set(known))
    if "shared" in unknown:
        raise TypeError(
            "start_server() got an unexpected keyword argument 'shared'. To join the room's "
            "server when there is one: server = join_room_server() or start_server() "
            "(from workshop_lib.server import join_room_server)"
        )
    if unknown:
        raise TypeError(
            f"start_server() got an unexpected keyword argument {unknown[0]!r}; its settings "
            f"are {', '.join(known)}, and port, name, lessons, routes, options and timeout"
        )
    return replace(options or ServerOptions(), **settings)


def _signature() -> inspect.Signature:
    """start_server's signature with each setting spelt out, for ``start_server?`` and
    editors' hints: Python sees ``**settings``, a person wants ``host='127.0.0.1'``."""
    own = [
        p
        for p in inspect.signature(start_server).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]
    spelt = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, (kind, default) in ServerOptions.settings().items()
    ]
    return inspect.Signature([*own, *spelt], return_annotation="WorkshopServer")


start_server.__signature__ = _signature()  # type: ignore[attr-defined]


def stop_server(name: str | None = None) -> None:
    """Stop the server called ``name``, or every running server when no name is given."""
    with _registry_lock:
        servers = list(_registry.values()) if name is None else [_registry.get(name)]
    for server in servers:
        if server is not None:
            server.stop()


def stopped_server_at(port: int) -> str | None:
    """The name of the server this process stopped on ``port``, if it has not restarted."""
    return _stopped.get(port)


def running_servers() -> list[WorkshopServer]:
    """The servers started in this process and not yet stopped."""
    with _registry_lock:
        return [s for s in _registry.values() if s.running]


def _stop_all_at_exit() -> None:
    # Stop servers while the interpreter can still run their loops' clean-up.
    try:
        stop_server()
    except Exception as exc:  # at exit, a failure to close must not hide the real exit status
        logger.warning("could not stop every server at exit: %s", exc)


_set_up = False


def _set_up_process() -> None:
    """What a process that runs servers needs, once, on the first start: not at import,
    where it would change a program that only imports the package."""
    global _set_up
    with _registry_lock:
        if _set_up:
            return
        _set_up = True
    first_use.set_up()  # the log kept for its widget, a notebook's one-line errors
    # Shown every time, not once per line of code: re-running a cell must warn again.
    warnings.filterwarnings("always", category=PortFallbackWarning)
    atexit.register(_stop_all_at_exit)
