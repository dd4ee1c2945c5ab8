"""What every server handle a notebook holds has in common: addresses, token, a connect.

Two kinds of server reach a notebook: one it started itself
(:class:`~workshop_lib.server.start.WorkshopServer`) and the room's shared one that an instructor
runs (:class:`~workshop_lib.server.room.SharedServer`). Lesson cells use only what is here, so
they run against either::

    async with server.connect("/ball") as websocket:   # the token goes in a header
        print(await websocket.recv())
    BallView(server.links.ws("/ball"), token=server.token)
"""

from __future__ import annotations

import html
from typing import Any

from websockets.asyncio.client import connect

from ..app.links import Links
from ..clients.proxies import proxy_for
from ..notebook.accidents import START_IT, ServerNotRunning

__all__ = ["ServerHandle", "bearer"]


def bearer(token: str | None) -> dict[str, str]:
    """The HTTP header that carries ``token`` (no header without one)."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


class ServerHandle:
    """Addresses and credentials of a workshop server; subclasses say how it runs."""

    name: str
    links: Links
    running: bool

    @property
    def token(self) -> str | None:
        """The token clients must present, or None if the server asks for none."""
        return self.links.token

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers for a Python client: ``connect(url, additional_headers=server.auth_headers)``."""
        return bearer(self.token)

    @property
    def url(self) -> str:
        """Base WebSocket URL, e.g. ``ws://127.0.0.1:8765`` (the echo lives there too)."""
        return self.links.websocket

    @property
    def http_url(self) -> str:
        """Base HTTP URL: the browser client is served there."""
        return self.links.http

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.links.port

    def connect(self, path: str = "/echo", **kwargs: Any) -> connect:
        """websockets' ``connect`` to ``path`` on this server, with the token if it has one.

        Usage: ``async with server.connect("/ball") as websocket: ...``
        Never through the system's proxy to a loopback server (:mod:`workshop_lib.clients.proxies`),
        unless ``proxy=`` says otherwise. On a stopped server it raises
        :class:`~workshop_lib.notebook.accidents.ServerNotRunning`, which says which cell to run.
        """
        if not self.running:  # a cell run after the clean-up: say so, not "connection refused"
            raise ServerNotRunning(
                f"the server {self.name!r} is stopped (a clean-up cell); {START_IT}."
            )
        url = self.links.ws(path)
        headers = {**self.auth_headers, **dict(kwargs.pop("additional_headers", None) or {})}
        kwargs.setdefault("proxy", proxy_for(url))
        return connect(url, additional_headers=headers, **kwargs)

    # -- display ------------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, str]]:
        """Rows of the HTML repr: (heading, HTML); subclasses add their own."""
        links = self.links
        # With a token, only the lesson pages' links carry it (in their fragment).
        rows = [] if self.token is not None else [("Browser client", _a(links.browse("/")))]
        rows += [(f"{page.title} page", _a(links.page(page.name))) for page in links.pages]
        rows.append(("Health check", _a(links.browse("/healthz"))))
        if self.token is not None:
            rows.append(
                (
                    "Token",
                    "required: Python clients send <code>server.auth_headers</code>; "
                    "the page links above carry it",
                )
            )
        return rows

    def _title(self) -> str:
        return type(self).__name__

    def _repr_html_(self) -> str:
        state = (
            '<span style="color:#1a7f37">&#9679; running</span>'
            if self.running
            else '<span style="color:#cf222e">&#9679; stopped</span>'
        )
        body = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{k}</th>'
            f'<td style="text-align:left">{v}</td></tr>'
            for k, v in self._rows()
        )
        return (
            f"<div><strong>{self._title()}</strong> <code>{html.escape(self.name)}</code> "
            f"{state}<table>{body}</table></div>"
        )


def _a(url: str) -> str:
    escaped = html.escape(url)
    return f'<a href="{escaped}" target="_blank" rel="noopener">{escaped}</a>'
