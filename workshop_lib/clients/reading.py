"""A JSON-event client that reads on a thread of its own: the base of the lesson clients.

A client of a stream (the ball) or a room (the chat) must keep reading: one that stops
makes the server skip it or drop it, and makes its own closing handshake wait behind the
messages it never read. So these clients read on a daemon thread and hand each decoded
event to :meth:`ReadingClient.handle`, while the notebook's thread sends::

    class Printer(ReadingClient):
        def handle(self, event):
            print(event["type"])

    with Printer(url) as client:      # connected, greeted (on_open) and reading
        client.send_event({"type": "ball.kick", "dx": 1, "dy": 0})

The constructor returns a started client: once every ``__init__`` in the class chain has
run, :meth:`ReadingClient.start` connects, runs :meth:`~ReadingClient.on_open` and starts
the reader thread. ``Printer(url, start=False)`` returns it unstarted, for a caller that
must set something up first; it then calls ``client.start()`` itself, once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException
from websockets.frames import EXTERNAL_CLOSE_CODES, CloseCode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from ..notebook.accidents import ServerNotRunning, refused_line
from ..server.handle import bearer
from ..wire.protocol import NO_RETRY, announced_close
from .backoff import backoff_delays
from .proxies import proxy_for

__all__ = ["FINAL_CLOSE_CODES", "Event", "ReadingClient"]

Event = dict[str, Any]

logger = logging.getLogger("workshop_lib.client")

# Closes after which a reconnect would be refused for the same reason (protocol.NO_RETRY).
FINAL_CLOSE_CODES = NO_RETRY

_Client = TypeVar("_Client", bound="ReadingClient")


def _close_as_told(websocket: ClientConnection, code: int) -> None:
    """Close at once, with ``code``, a connection the server said it is closing.

    The server waits a little for this before it closes itself (closing.CLOSE_GRACE):
    behind jupyter-server-proxy, a server's close makes the proxy cut the line at this
    client's next message, and a send that then fails loses what was not read yet.
    Closing first also stops the notebook's thread from sending more into a closing line.
    """
    # websockets sends 1000-1014's registered codes and 3000-4999; 1005/1006-like ones are
    # only ever reported, never sent.
    if code not in EXTERNAL_CLOSE_CODES and not 3000 <= code <= 4999:
        code = CloseCode.NORMAL_CLOSURE
    websocket.close(code, "closing as the server said")


class _StartsWhenBuilt(type):
    """Calls ``start()`` on a new client after the whole ``__init__`` chain has run.

    Why a metaclass: ``type.__call__`` runs ``__init__`` (every ``super().__init__`` in it
    included) and only then returns, so this is the one place that knows an object is fully
    built, whatever the depth of the subclassing (ReadingClient, ChatClient, ChatBot...).
    Starting from a base ``__init__`` ran the subclass's ``on_open`` on an object whose
    ``__init__`` had not finished; an ``__init_subclass__`` wrapper around each ``__init__``
    would need a depth counter to find the outermost one; a ``start=True`` parameter would
    have to be passed down by every subclass, and one that forgets starts too early. The
    cost: a ReadingClient cannot also derive from a class with another metaclass (the
    widgets hold a client instead of being one).
    """

    def __call__(cls: type[_Client], *args: Any, start: bool = True, **kwargs: Any) -> _Client:
        client = type.__call__(cls, *args, **kwargs)
        if start:
            client.start()
        return client


class ReadingClient(metaclass=_StartsWhenBuilt):
    """A client of ``url`` whose reader thread hands each event to :meth:`handle`.

    ``token``: sent as ``Authorization: Bearer ...`` to a server that asks for one.
    ``reconnect``: when the connection drops (the server restarts, the network blips), the
    reader thread connects again after a backoff
    (:func:`~workshop_lib.clients.backoff.backoff_delays`) and :meth:`on_open` runs again on
    the new connection, so a chat member rejoins.

    ``url`` may be a list of addresses (several server processes sharing one room, lesson
    06): the client connects to the first, and each reconnect attempt tries the next one,
    so a client whose server process died moves to another.

    ``__init__`` only stores settings; :meth:`start` (called for you once the object is
    built, see :class:`_StartsWhenBuilt`) connects. ``thread_name`` names the reader thread.
    """

    thread_name = "reading-client"

    def __init__(
        self,
        url: str | Sequence[str],
        timeout: float = 5.0,
        *,
        token: str | None = None,
        reconnect: bool = False,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("give the address of at least one server")
        self.url = self.urls[0]  # the address of the current (or last) connection
        self.timeout = timeout
        self.token = token
        self.reconnect = reconnect
        self.reconnects = 0  # how many times the connection was restored
        self._closing = threading.Event()
        # Guards the connection's swap (reader thread, in _reopen) against close() (any
        # thread): under it, either the new connection is kept and close() closes it, or
        # close() came first and the reader closes the new connection itself.
        self._lock = threading.Lock()
        self._started = False
        self._exit_stack = ExitStack()  # the `with` of the current connection
        self._websocket: ClientConnection | None = None
        self._pending: ClientConnection | None = None  # opened, being greeted by on_open
        self._reader: threading.Thread | None = None
        # The server's in-band ``error`` event with a ``close`` code on the current
        # connection: the reason it ends, even when a proxy turns the close into 1006.
        self.closing_error: Event | None = None

    # -- starting -------------------------------------------------------------------------------

    def start(self: _Client) -> _Client:
        """Connect, run :meth:`on_open`, then read on a daemon thread; once per client."""
        with self._lock:
            if self._started:
                raise RuntimeError(
                    f"{type(self).__name__}.start() was already called: a client starts once "
                    "(the constructor starts it unless given start=False)"
                )
            if self._closing.is_set():
                raise RuntimeError(f"{type(self).__name__} was closed before it started")
            self._started = True
        try:
            stack, websocket = self._open()
        except BaseException as exc:
            with self._lock:
                self._started = False  # nothing is running: start() may be tried again
            if isinstance(exc, ConnectionRefusedError) and not isinstance(exc, ServerNotRunning):
                # Nothing listens: one sentence that says so and what to run, not a chain.
                raise ServerNotRunning(refused_line(url=self.url)) from None
            raise
        with self._lock:
            closed_meanwhile = self._closing.is_set()
            if not closed_meanwhile:
                self._exit_stack, self._websocket = stack, websocket
        if closed_meanwhile:  # close() ran on another thread during on_open
            stack.close()
            raise RuntimeError(f"{type(self).__name__} was closed while it started")
        self._reader = threading.Thread(target=self._read, name=self.thread_name, daemon=True)
        self._reader.start()
        return self

    def start_reading(self, name: str) -> None:
        """Name the reader thread (older subclasses call this in ``__init__``).

        Reading itself starts in :meth:`start`, after ``__init__``; set ``thread_name``
        instead in new code.
        """
        if self._started:
            raise RuntimeError("start_reading() names the reader before start(); it is too late")
        self.thread_name = name

    def _open(self, url: str | None = None) -> tuple[ExitStack, ClientConnection]:
        """A new connection, greeted by :meth:`on_open`, inside the ``with`` that closes it."""
        with ExitStack() as stack:
            websocket = stack.enter_context(
                connect(
                    url or self.url,
                    open_timeout=self.timeout,
                    additional_headers=bearer(self.token),
                    proxy=proxy_for(url or self.url),
                )
            )
            self.url = url or self.url
            with self._lock:
                self._pending = websocket  # close() may end the greeting early
            try:
                if self._closing.is_set():
                    raise ConnectionClosedOK(None, None)  # closed while connecting
                self.on_open(websocket)
            finally:
                with self._lock:
                    self._pending = None
            return stack.pop_all(), websocket  # an exception above closes it at once

    def on_open(self, websocket: ClientConnection) -> None:
        """Runs on each new connection before reading starts; subclasses greet the server.

        The object is fully built by then (every ``__init__`` has run).
        """

    # -- reading --------------------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            websocket = self._websocket
            assert websocket is not None  # start() set it before starting this thread
            try:
                for message in websocket:
                    event = json.loads(message)
                    announced = announced_close(event)
                    if announced is not None:
                        self.closing_error = event  # the close that follows may be a proxy's
                        _close_as_told(websocket, announced)
                    self.handle(event)
            except ConnectionClosed:
                pass  # close(), or the server went away
            if (
                self._closing.is_set()
                or not self.reconnect
                or self.close_code in FINAL_CLOSE_CODES
                or not self._reopen()
            ):
                return  # the thread ends

    def _reopen(self) -> bool:
        """Connect again after growing waits; False if close() came first.

        With several addresses, the attempts go round them, starting with the next one.
        """
        start = self.urls.index(self.url) if self.url in self.urls else -1
        for attempt, delay in enumerate(backoff_delays(), start=1):
            if self._closing.wait(delay):
                return False
            url = self.urls[(start + attempt) % len(self.urls)]
            try:
                stack, websocket = self._open(url)
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.info("reconnecting to %s: %s", url, exc)
                continue
            with self._lock:
                closed_meanwhile = self._closing.is_set()
                if not closed_meanwhile:
                    old, self._exit_stack, self._websocket = self._exit_stack, stack, websocket
            if closed_meanwhile:
                # close() has already closed the connection it saw: this newer one is ours
                # to close, or it would stay open with nobody reading it.
                stack.close()
                return False
            old.close()  # the old connection's `with`: it is closed already
            self.closing_error = None  # that reason was the old connection's
            self.reconnects += 1
            logger.info("reconnected to %s", self.url)
            return True
        return False  # backoff_delays() never ends; this is for type checkers

    def handle(self, event: Event) -> None:
        """Called on the reader thread for each event; subclasses keep what they need."""
        raise NotImplementedError

    def send_event(self, event: Event) -> None:
        """Send one event as JSON text (safe from any thread but the reader's)."""
        if self._websocket is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        self._websocket.send(json.dumps(event))

    @property
    def connected(self) -> bool:
        """True while the connection is open and read."""
        return (
            self._reader is not None
            and self._reader.is_alive()
            and self._websocket is not None
            and self._websocket.protocol.state is State.OPEN
        )

    @property
    def close_code(self) -> int | None:
        """How the connection ended (None while it is open, or before it opened).

        The code the server announced in band when it did (``closing_error``): a proxy
        such as jupyter-server-proxy passes on 1000, 1005 or 1006 instead of 4001 or 4029.
        """
        if self._websocket is None or self._websocket.close_code is None:
            return None
        announced = announced_close(self.closing_error)
        return announced if announced is not None else self._websocket.close_code

    @property
    def close_reason(self) -> str | None:
        """Why the connection ended, for people: the server's in-band message, else the
        close frame's reason (None while it is open; "" when none was given)."""
        if self._websocket is None or self._websocket.close_code is None:
            return None
        if self.closing_error is not None:
            return str(self.closing_error.get("message", ""))
        return self._websocket.close_reason or ""

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (closing handshake included) and end the reader thread.

        Safe to call more than once, from any thread, also while the reader reconnects.
        """
        self._closing.set()
        with self._lock:  # after this, no new connection is kept (see _reopen)
            stack, pending = self._exit_stack, self._pending
        if pending is not None:
            pending.close()  # a greeting in progress ends now; _open gives that connection up
        stack.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(self.timeout + 5)  # enough for an open_timeout, then a close

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
