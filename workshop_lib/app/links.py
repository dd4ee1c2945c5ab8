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

Two kinds of address: ``ws()``/``url()`` are where programs on this machine connect (the
kernel's clients, always direct); ``page()``, ``browse()`` and ``browser_ws()`` are what a
person's browser opens. They differ when the browser reaches only Jupyter's port (JupyterHub,
Binder, a remote Jupyter): then :func:`detect_proxy` finds jupyter-server-proxy's address,
``{prefix}proxy/{port}/``, by the rules written in docs/hubs.md::

    links = Links("127.0.0.1", 8765, pages=app.pages, proxy=detect_proxy())
    links.page("ball")     # '/user/learner/proxy/8765/#ball' under JupyterHub
    links.ws("/ball")      # 'ws://127.0.0.1:8765/ball' still, for the kernel's own clients
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from ..lesson import Page

__all__ = ["PUBLIC_URL_VARIABLE", "Links", "Proxy", "browser_ws", "detect_proxy", "lan_address"]

PUBLIC_URL_VARIABLE = "WORKSHOP_PUBLIC_URL"
# Values of WORKSHOP_PUBLIC_URL that turn every proxy rule off.
_DIRECT = {"direct", "none", "off"}

# A server bound to every interface is reached on this machine through loopback.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class Proxy:
    """Where a browser finds this machine's ports when it can reach only Jupyter's.

    ``template``: the base URL of a port, ``{port}`` standing for the number, e.g.
    ``/user/learner/proxy/{port}/`` (relative to the hub's host, which only the browser
    knows) or ``https://hub.example/user/learner/proxy/{port}/``. ``rule``: which rule of
    :func:`detect_proxy` picked it, said in the server's display.
    """

    template: str
    rule: str

    def base(self, port: int) -> str:
        """The base URL of ``port``, ending in ``/``."""
        return self.template.replace("{port}", str(port))


@dataclass(frozen=True)
class Links:
    """The public addresses of one server."""

    host: str
    port: int
    token: str | None = None  # goes into page links' fragments, nowhere else
    pages: tuple[Page, ...] = ()  # the lessons' pages of the browser client
    proxy: Proxy | None = None  # how a browser reaches the port, if not directly
    secure: bool = False  # https: and wss: (a room's server behind a TLS proxy)

    def at(self, host: str) -> Links:
        """The same server's links under another host name (the room's address), which the
        room reaches directly: no hub's proxy (only an explicit WORKSHOP_PUBLIC_URL stays)."""
        explicit = self.proxy is not None and self.proxy.rule == PUBLIC_URL_VARIABLE
        return replace(self, host=host, proxy=self.proxy if explicit else None)

    @property
    def display_host(self) -> str:
        """The host name to put in a URL (IPv6 literals get brackets)."""
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def http(self) -> str:
        """Base HTTP URL, e.g. ``http://127.0.0.1:8765``."""
        return f"{'https' if self.secure else 'http'}://{self.display_host}:{self.port}"

    @property
    def websocket(self) -> str:
        """Base WebSocket URL, e.g. ``ws://127.0.0.1:8765`` (which is the echo)."""
        return f"{'wss' if self.secure else 'ws'}://{self.display_host}:{self.port}"

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
        return f"{self.browse('/')}{search}#{lesson}{secret}"

    def browse(self, path: str = "/") -> str:
        """The link a person opens for an HTTP path: :meth:`url`, or its proxied address
        (``/user/learner/proxy/8765/healthz``, relative to the hub's host)."""
        if self.proxy is None:
            return self.url(path)
        return self.proxy.base(self.port) + _absolute(path)[1:]

    def browser_ws(self, path: str = "/") -> str:
        """The WebSocket address a browser uses for ``path``: :meth:`ws`, or through the
        proxy (``/user/learner/proxy/8765/ball``: relative to the page, which browsers
        resolve since 2024, and ws:/wss: follow the page's http:/https:)."""
        if self.proxy is None:
            return self.ws(path)
        address = self.browse(path)
        scheme, sep, rest = address.partition("://")
        if not sep:
            return address
        return {"https": "wss", "http": "ws"}.get(scheme, scheme) + "://" + rest


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def detect_proxy(environ: Mapping[str, str] | None = None) -> Proxy | None:
    """How a browser reaches this machine's ports, if not directly; None: directly.

    The first rule that applies wins (docs/hubs.md says why each):

    1. ``WORKSHOP_PUBLIC_URL``: an explicit base, as dask's ``distributed.dashboard.link``:
       ``https://hub.example/user/ada/proxy/{port}/``, ``/user/ada/proxy/{port}/``, or one
       server's address without ``{port}`` (an ssh tunnel's ``http://localhost:9000/``).
       ``direct`` turns every rule off.
    2. ``JUPYTERHUB_SERVICE_PREFIX`` (JupyterHub and Binder set it in the kernel):
       ``{prefix}proxy/{port}/``, which jupyter-server-proxy serves on every hub that
       installs it.
    3. In a kernel of a Jupyter server whose ``base_url`` is not ``/`` or that listens
       beyond loopback (a remote Jupyter), with jupyter-server-proxy importable:
       ``{base_url}proxy/{port}/``.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(PUBLIC_URL_VARIABLE, "").strip()
    if explicit:
        if explicit.lower() in _DIRECT:
            return None
        return Proxy(_checked_public_url(explicit), PUBLIC_URL_VARIABLE)
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "").strip()
    if prefix:
        return Proxy(f"{_slashed(prefix)}proxy/{{port}}/", "JUPYTERHUB_SERVICE_PREFIX")
    server = _jupyter_server(env)
    if server is None or importlib.util.find_spec("jupyter_server_proxy") is None:
        return None
    base_url = _slashed(str(server.get("base_url") or "/"))
    if base_url == "/" and _is_loopback_name(str(server.get("hostname") or "localhost")):
        return None  # a local Jupyter: the browser is on this machine and connects directly
    return Proxy(f"{base_url}proxy/{{port}}/", "Jupyter server's base_url")


def browser_ws(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The address a browser uses for the kernel-side WebSocket ``url``, or ``""`` when it is
    the same one (no proxy, or ``url`` is not on this machine: the room's server)."""
    parts = urlsplit(url)
    proxy = detect_proxy(environ)
    if proxy is None or parts.port is None or not _is_loopback_name(parts.hostname or ""):
        return ""
    path = parts.path or "/"
    return Links(parts.hostname or "", parts.port, proxy=proxy).browser_ws(
        path + (f"?{parts.query}" if parts.query else "")
    )


def _checked_public_url(value: str) -> str:
    parts = urlsplit(value)
    if not (value.startswith("/") or (parts.scheme in ("http", "https") and parts.netloc)):
        raise ValueError(
            f"{PUBLIC_URL_VARIABLE}={value!r} is not an address: give a base such as "
            "https://hub.example/user/NAME/proxy/{port}/ or /user/NAME/proxy/{port}/, "
            "or 'direct' for none"
        )
    return _slashed(value)


def _slashed(prefix: str) -> str:
    """``prefix`` with one ``/`` at its end (and at its start, if it is a path)."""
    if "://" not in prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix.rstrip("/") + "/"


def _is_loopback_name(host: str) -> bool:
    if host.lower() in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _jupyter_server(env: Mapping[str, str]) -> dict[str, object] | None:
    """The info file (``jpserver-PID.json``) of the Jupyter server that started this kernel.

    jupyter_client gives every kernel its server's pid as ``JPY_PARENT_PID``; the server
    writes its base_url and address to ``jpserver-<pid>.json`` in Jupyter's runtime dir.
    """
    pid = env.get("JPY_PARENT_PID", "").strip()
    if not pid.isdigit():
        return None
    runtime = env.get("JUPYTER_RUNTIME_DIR")
    if not runtime:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            return None
        runtime = jupyter_runtime_dir()
    try:
        info = json.loads((Path(runtime) / f"jpserver-{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


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
