"""Every address the course shows a person is built here, and only here.

The server's repr, the notebooks and the command line all ask a :class:`Links` for their
URLs, so that a proxied address (JupyterHub's ``/user/NAME/proxy/8765/``, Binder) needs one
change in this file and nowhere else::

    links = Links(host="127.0.0.1", port=8765)
    links.ws("/echo")      # 'ws://127.0.0.1:8765/echo'
    links.page("echo")     # 'http://127.0.0.1:8765/#echo'
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ["LESSON_PAGES", "Links"]

# Pages of the browser client (static/index.html), by their #fragment.
LESSON_PAGES: dict[str, str] = {"echo": "Echo", "ball": "Bouncing ball", "chat": "Chat"}

# A server bound to every interface is reached on this machine through loopback.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class Links:
    """The public addresses of one server."""

    host: str
    port: int

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
        """
        if lesson not in LESSON_PAGES:
            raise ValueError(f"no browser page {lesson!r}; pages: {', '.join(LESSON_PAGES)}")
        search = f"?{urlencode(query)}" if query else ""
        return f"{self.http}/{search}#{lesson}"


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path
