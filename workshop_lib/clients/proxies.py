"""Which WebSocket connections may go through the system's proxy: none to this machine.

websockets (15 and later) routes a client through the proxy that the environment names
(``ws_proxy``, ``socks_proxy``, ``https_proxy``, ``http_proxy``, upper or lower case),
unless ``no_proxy`` lists the host. JupyterHubs and corporate machines often set them, and
then a notebook's client of the kernel's own server at ``ws://127.0.0.1:PORT`` is sent to
the proxy, which cannot reach this machine's loopback (it is the proxy's own) and answers
with an error or a hang. Every lesson client asks here::

    connect(url, proxy=proxy_for(url))

The rule:

* **loopback** (``localhost``, ``127.x``, ``::1``): never a proxy, whatever the settings;
  nothing but this machine can answer there;
* **any other host** (the room's server, on the LAN or beyond): what the system's settings
  say, ``no_proxy`` included, as every other program on the machine does. A room's server
  on the LAN is usually reached directly, but whether a proxy is needed to reach it is a
  fact about the network that only those settings (or the person who wrote them) know; an
  instructor whose room must bypass the proxy adds the server's address to ``NO_PROXY``.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Literal
from urllib.parse import urlsplit

from ..app.auth import is_loopback

__all__ = ["PROXY_VARIABLES", "interfering_proxy", "proxy_for"]

# What websockets 17 reads (urllib's getproxies(): "<scheme>_proxy" of the environment),
# and ALL_PROXY, which websockets ignores but curl, httpx and pip's tools honour.
PROXY_VARIABLES = (
    "ws_proxy",
    "wss_proxy",
    "socks_proxy",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


def proxy_for(url: str) -> Literal[True] | None:
    """``connect()``'s ``proxy`` argument for ``url``: None (direct) for loopback, else True.

    True lets websockets apply the system's settings, ``no_proxy`` included.
    """
    host = urlsplit(url).hostname
    return None if host is not None and is_loopback(host) else True


def interfering_proxy(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The proxy variables set in ``environ`` (default: the process's) that would send a
    client of ``127.0.0.1`` through a proxy without :func:`proxy_for`: {name: value}.

    Empty when none is set, or when ``no_proxy`` already covers loopback (``127.0.0.1``
    and ``localhost``, or ``*``).
    """
    env = os.environ if environ is None else environ
    found = {
        name: value
        for name, value in env.items()
        if name.lower() in PROXY_VARIABLES and value.strip()
    }
    if not found:
        return {}
    no_proxy = env.get("no_proxy", env.get("NO_PROXY", ""))
    if _bypasses(no_proxy, "127.0.0.1") and _bypasses(no_proxy, "localhost"):
        return {}
    return found


def _bypasses(no_proxy: str, host: str) -> bool:
    """Whether a ``no_proxy`` value exempts ``host``, by urllib's rule (websockets uses it)."""
    return bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))
