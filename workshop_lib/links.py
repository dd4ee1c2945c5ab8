"""Every address the course shows a person is built here, and only here.

The server's repr, the notebooks and the command line all ask a :class:`Links` for their
URLs, so that a proxied address (JupyterHub's ``/user/NAME/proxy/8765/``, Binder) needs one
change in this file and nowhere else::

    links = Links(host="127.0.0.1", port=8765, pages=app.pages)
    links.ws("/echo")      # 'ws://127.0.0.1:8765/echo'
    links.page("echo")     # 'http://127.0.0.1:8765/#echo'

A server with a token gets page links that carry it in the fragment, ``#echo&token=...``:
browsers never send the fragment to the server, so the token reaches the page's script
without landing in any server's or proxy's log, and the page removes it from the address bar.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from urllib.parse import quote, urlencode

from .lesson import Page

__all__ = ["Links", "lan_address"]

# A server bound to every interface is reached on this machine through loopback.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class Links:
    """The public addresses of one server."""

    host: str
    port: int
    token: str | None = None  # goes into page links' fragments, nowhere else
    pages: tuple[Page, ...] = ()  # the lessons' pages of the browser client

    def at(self, host: str) -> Links:
        """The same server's links under another host name (the room's address)."""
        return replace(self, host=host)

    @property
    def display_host(self) -> str:
        """The host name to put in a URL (IPv6 literals get brackets)."""
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def http(self) -> str:
        """Base HTTP URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.display_host}:{self.port}"

    @property
    def websocket(self) -> str:
        """Base WebSocket URL, e.g. ``ws://127.0.0.1:8765`` (which is the echo)."""
        return f"ws://{self.display_host}:{self.port}"

    def ws(self, path: str = "/") -> str:
        """WebSocket URL of a path, e.g. ``links.ws("/echo")``."""
        return self.websocket + _absolute(path)

    def url(self, path: str = "/") -> str:
        """HTTP URL of a path, e.g. ``links.url("/healthz")``."""
        return self.http + _absolute(path)

    def page(self, lesson: str, **query: str) -> str:
        """URL of a lesson's page in the browser client, e.g. ``links.page("echo")``.

        Query parameters go before the fragment: ``links.page("chat", name="ada")`` is
        ``http://127.0.0.1:8765/?name=ada#chat``, the chat's deep link that joins at once.
        The token, if any, goes after the page in the fragment: ``#chat&token=...``.
        """
        names = [page.name for page in self.pages]
        if lesson not in names:
            raise ValueError(f"no browser page {lesson!r}; pages: {', '.join(names) or 'none'}")
        search = f"?{urlencode(query)}" if query else ""
        secret = f"&token={quote(self.token, safe='')}" if self.token else ""
        return f"{self.http}/{search}#{lesson}{secret}"


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def lan_address() -> str | None:
    """This machine's address on its local network (what learners type), if it has one.

    Connecting a UDP socket sends nothing; it only asks the kernel which interface would
    carry traffic out, and that interface's address is the one the room can reach.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address
