"""The room's shared server: the one an instructor runs, that learners' notebooks join.

An instructor starts ``python -m workshop_lib serve --host 0.0.0.0 --new-token`` and hands
out two values; each learner sets them before starting JupyterLab (or in a first cell)::

    WORKSHOP_SERVER=http://192.168.1.20:8765
    WORKSHOP_TOKEN=<the token>

Then a notebook joins that server instead of starting its own, and the lesson's displays and
clients join the room's ball and chat::

    server = join_room_server() or start_server()   # the room's server; alone, your own

:func:`join_room_server` returns a :class:`SharedServer` for that address, checked, or None
when no variable names one. Nothing runs here: ``stop()`` only lets go of the handle.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import replace
from urllib.parse import urlsplit

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from ..app.links import Links
from ..clients.proxies import proxy_for
from ..lesson import Page
from ..notebook.accidents import Explained
from . import first_use
from .handle import ServerHandle, bearer

__all__ = [
    "SERVER_VARIABLE",
    "TOKEN_VARIABLE",
    "SharedServer",
    "SharedServerError",
    "join_room_server",
    "room_server",
]

SERVER_VARIABLE = "WORKSHOP_SERVER"
TOKEN_VARIABLE = "WORKSHOP_TOKEN"


class SharedServerError(Explained, RuntimeError):
    """The shared server named in the environment cannot be used; the message says why."""


class SharedServer(ServerHandle):
    """A workshop server that runs elsewhere (the instructor's). Check it with :meth:`check`."""

    def __init__(self, url: str, token: str | None = None, name: str = "shared") -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "ws", "https", "wss") or parts.hostname is None:
            raise SharedServerError(
                f"{SERVER_VARIABLE}={url!r} is not a server address; it looks like "
                "http://192.168.1.20:8765 (ask your instructor for the exact one)"
            )
        self.name = name
        secure = parts.scheme in ("https", "wss")  # the room's server behind a TLS proxy
        default = 443 if secure else 80
        self.links = Links(parts.hostname, parts.port or default, token or None, secure=secure)
        self.running = True

    def check(self, timeout: float = 3.0) -> None:
        """Ask the server's ``/healthz``; raise :class:`SharedServerError` saying what to do."""
        where = self.links.url("/healthz")
        # No proxy: a classroom address is on the local network, never behind one.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(where, timeout=timeout) as response:
                health = json.load(response)
        except (OSError, ValueError) as exc:
            raise SharedServerError(
                f"No workshop server answers at {self.http_url} ({exc}). Check "
                f"{SERVER_VARIABLE} with your instructor, or unset it to run your own server."
            ) from None
        pages = health.get("pages")
        if isinstance(pages, list):  # the lessons that server runs, for the page links
            self.links = replace(
                self.links,
                pages=tuple(Page(p["name"], p["title"], p["module"]) for p in pages),
            )
        if health.get("auth") == "token" and self.token is None:
            raise SharedServerError(
                f"The shared server at {self.http_url} needs a token: set {TOKEN_VARIABLE} "
                "to the one your instructor gave you, then run this cell again."
            )
        if health.get("auth") == "token":
            routes = health.get("routes") or ["/echo"]
            self._check_token("/echo" if "/echo" in routes else routes[0], timeout)

    def _check_token(self, path: str, timeout: float) -> None:
        """Open one WebSocket with the token and close it: the server says 401 to a wrong one.

        ``/healthz`` answers anyone, so only a handshake tells whether the room takes this
        token; found here, it is one sentence instead of every client's ``HTTP 401``.
        """
        url = self.links.ws(path)
        try:
            with connect(
                url,
                additional_headers=bearer(self.token),
                open_timeout=timeout,
                proxy=proxy_for(url),  # the way the lesson's clients will go
            ):
                pass
        except InvalidStatus as refused:
            if refused.response.status_code == 401:
                raise SharedServerError(
                    f"The room's server at {self.http_url} refused this token: ask your "
                    f"instructor for the current one, set {TOKEN_VARIABLE} to it, then run "
                    "this cell again."
                ) from None
            # A full room (429, 503) is no reason to refuse the handle: clients retry.
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise SharedServerError(
                f"The room's server at {self.http_url} answers its health check but no "
                f"WebSocket ({exc}): tell your instructor."
            ) from None

    def stop(self) -> None:
        """Let go of the handle; the shared server itself keeps running for the room."""
        self.running = False

    close = stop

    def __enter__(self) -> SharedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SharedServer {self.name!r} at {self.url}>"

    def _title(self) -> str:
        return "SharedServer (your instructor's)"


def join_room_server(name: str = "room") -> SharedServer | None:
    """The room's shared server named by ``WORKSHOP_SERVER`` (with ``WORKSHOP_TOKEN``), checked,
    or None when the variable is not set.

    Usage: ``server = join_room_server() or start_server()``: in a workshop whose instructor
    runs one server, everyone's notebook joins it; alone, each starts its own. A server that
    does not answer, or refuses the token, raises :class:`SharedServerError` saying what to do.
    """
    url = os.environ.get(SERVER_VARIABLE, "").strip()
    if not url:
        return None
    first_use.set_up()  # a notebook that joins the room starts no server of its own
    server = SharedServer(url, os.environ.get(TOKEN_VARIABLE, "").strip() or None, name)
    server.check()
    return server


def room_server(own: ServerHandle, name: str = "room") -> ServerHandle:
    """The room's shared server when ``WORKSHOP_SERVER`` names one (checked), else ``own``.

    For a lesson whose demos belong on the learner's own server while the learner's widget
    joins the room: ``room = room_server(server)``. Alone, both are the same server.
    """
    found = join_room_server(name)
    return own if found is None else found
