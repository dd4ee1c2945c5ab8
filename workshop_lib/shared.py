"""The room's shared server: the one an instructor runs, that learners' notebooks join.

An instructor starts ``python -m workshop_lib serve --host 0.0.0.0 --new-token`` and hands
out two values; each learner sets them before starting JupyterLab (or in a first cell)::

    WORKSHOP_SERVER=http://192.168.1.20:8765
    WORKSHOP_TOKEN=<the token>

Then ``start_server(shared=True)`` in a notebook returns a :class:`SharedServer` for that
address instead of starting a server, and the lesson's displays and clients join the room's
ball and chat. Nothing runs here: ``stop()`` only lets go of the handle.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import replace
from urllib.parse import urlsplit

from .handle import ServerHandle
from .lesson import Page
from .links import Links

__all__ = ["SERVER_VARIABLE", "TOKEN_VARIABLE", "SharedServer", "shared_server_from_env"]

SERVER_VARIABLE = "WORKSHOP_SERVER"
TOKEN_VARIABLE = "WORKSHOP_TOKEN"


class SharedServerError(RuntimeError):
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


def shared_server_from_env(name: str) -> SharedServer | None:
    """The checked shared server named by ``WORKSHOP_SERVER``, or None if it is not set."""
    url = os.environ.get(SERVER_VARIABLE, "").strip()
    if not url:
        return None
    server = SharedServer(url, os.environ.get(TOKEN_VARIABLE, "").strip() or None, name)
    server.check()
    return server
