"""The setup check of notebook 00: is everything here, and if not, exactly how to fix it.

    from workshop_lib.notebook.setup_check import run_checks
    run_checks()     # a table: one line per check, each ok or how to fix it

Whether the ipywidgets *front end* works can only be told by the front end itself: the
report is a widget with view counting on, and its "widgets-frontend" line turns ok when
JupyterLab actually renders it. Where nothing renders it (nbval, a console) it stays a
failure with the fix, which is the truth.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import ipywidgets as widgets

from ..app.links import PUBLIC_URL_VARIABLE, detect_proxy
from ..clients.proxies import interfering_proxy
from ..clients.round_trip import echo_round_trips
from ..redis.local import INSTALL_HINT, find_redis_server
from ..server.ports import describe_port_holder, port_is_free
from ..server.room import SERVER_VARIABLE, SharedServerError, join_room_server
from ..server.start import DEFAULT_HOST, DEFAULT_PORT, start_server

__all__ = [
    "REQUIREMENTS",
    "Check",
    "SetupReport",
    "check_links",
    "check_progress",
    "check_proxy",
    "check_redis",
    "run_checks",
]

# Package, lowest version the course needs, and why (shown when it is missing).
REQUIREMENTS: list[tuple[str, tuple[int, ...], str]] = [
    ("websockets", (17,), "the server and the clients"),
    ("ipywidgets", (8, 1), "the live displays"),
    ("jupyterlab", (4, 2), "the course runs in JupyterLab 4"),
]

INSTALL = "pip install -r requirements.txt (in the repository folder, in this environment)"


@dataclass
class Check:
    """One line of the report: ``status`` is "ok", "warn" or "fail"."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_python() -> Check:
    """Python 3.11 or newer (websockets 17 needs it)."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 11):  # noqa: UP036  (the check exists for older Pythons)
        return Check("python", "ok", f"Python {version}")
    return Check(
        "python",
        "fail",
        f"Python {version} is too old",
        "install Python 3.11 or newer and create the environment again",
    )


def check_package(name: str, minimum: tuple[int, ...], why: str) -> Check:
    """A package is installed in this kernel's environment, at least at ``minimum``."""
    wanted = ".".join(map(str, minimum))
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return Check(name, "fail", f"not installed (needed for {why})", INSTALL)
    if _version_tuple(version) < minimum:
        return Check(
            name, "fail", f"{version} is older than {wanted}", f"pip install -U '{name}>={wanted}'"
        )
    return Check(name, "ok", version)


def check_widgets_extension() -> Check:
    """The ipywidgets JupyterLab extension is installed where JupyterLab looks for it."""
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return Check("widgets-extension", "fail", "jupyter_core is missing", INSTALL)
    found = [
        Path(p) / "@jupyter-widgets" / "jupyterlab-manager" for p in jupyter_path("labextensions")
    ]
    if any(path.is_dir() for path in found):
        return Check("widgets-extension", "ok", "@jupyter-widgets/jupyterlab-manager found")
    return Check(
        "widgets-extension",
        "fail",
        "the ipywidgets JupyterLab extension is missing",
        "pip install jupyterlab_widgets (same environment as jupyter lab), then "
        "restart JupyterLab and reload the page",
    )


def check_port(port: int = DEFAULT_PORT) -> Check:
    """The course's default port is free (if not, the server falls back, but say who has it)."""
    name = f"port-{port}"
    if port_is_free(DEFAULT_HOST, port):
        return Check(name, "ok", f"port {port} is free")
    return Check(
        name,
        "warn",
        f"port {port} is taken; start_server() will pick another port and say so",
        describe_port_holder(port),
    )


def check_server() -> list[Check]:
    """A server starts, serves the browser client, and echoes over a real WebSocket."""
    started = time.perf_counter()
    try:
        server = start_server(port=0, name="setup-check")
    except Exception as exc:
        return [
            Check(
                "server-start",
                "fail",
                f"{type(exc).__name__}: {exc}",
                "copy this message into the course chat or an issue",
            )
        ]
    checks = [
        Check("server-start", "ok", f"started in {(time.perf_counter() - started) * 1e3:.0f} ms")
    ]
    with server:
        try:
            with urllib.request.urlopen(server.links.url("/"), timeout=5) as reply:
                page = reply.read().decode()
            with urllib.request.urlopen(server.links.url("/static/main.js"), timeout=5) as reply:
                script_type = reply.headers.get("Content-Type", "")
            if "<title>" in page and script_type.startswith("text/javascript"):
                checks.append(Check("browser-client", "ok", "index.html and main.js are served"))
            else:
                checks.append(
                    Check(
                        "browser-client",
                        "fail",
                        "the browser client's files look wrong",
                        "check that static/ is complete (git status)",
                    )
                )
        except OSError as exc:
            checks.append(
                Check(
                    "browser-client",
                    "fail",
                    f"{exc}",
                    "run the notebook from a full clone of the repository",
                )
            )
        try:
            [reply] = echo_round_trips(server.links.ws("/echo"), ["ping"])
            checks.append(Check("echo", "ok", f"round trip in {reply.ms:.1f} ms"))
        except Exception as exc:
            checks.append(
                Check(
                    "echo",
                    "fail",
                    f"{type(exc).__name__}: {exc}",
                    "a firewall or proxy may block local WebSockets",
                )
            )
    return checks


def check_proxy(environ: dict[str, str] | None = None) -> Check:
    """A proxy setting that would send clients of this machine's server to the proxy.

    Hubs and company machines set ``HTTPS_PROXY`` and friends; websockets (15+) follows
    them unless ``NO_PROXY`` names the host. The course's own clients never take a proxy
    to loopback (:mod:`workshop_lib.clients.proxies`), so that is handled; a learner's own
    ``connect(url)`` in an exercise cell is not. Only the variables' names are shown: a
    proxy's address can hold a password.
    """
    found = interfering_proxy(environ)
    if not found:
        return Check("proxy", "ok", "no proxy setting sends this machine's WebSockets away")
    names = ", ".join(sorted(found))
    return Check(
        "proxy",
        "warn",
        f"{names} set, and NO_PROXY does not name 127.0.0.1 and localhost: handled for the "
        "course's own clients, which connect to this machine directly; your own "
        "connect(url) calls would go to the proxy",
        "write connect(url, proxy=None) in your own cells, or run os.environ['NO_PROXY'] = "
        "'127.0.0.1,localhost,::1' (import os) once before them; or export that "
        "NO_PROXY before starting jupyter lab",
    )


_FRONTEND_PENDING = Check(
    "widgets-frontend",
    "fail",
    "no widget front end has shown this table (outside JupyterLab, e.g. under nbval, this "
    "is expected)",
    "in JupyterLab, this line turns ok by itself; if it stays: pip install ipywidgets "
    "jupyterlab_widgets in the environment that runs `jupyter lab`, restart it, reload",
)
_FRONTEND_OK = Check("widgets-frontend", "ok", "JupyterLab rendered this widget")

_ICONS = {
    "ok": ("&#10004;", "#1a7f37"),
    "warn": ("&#9888;", "#9a6700"),
    "fail": ("&#10008;", "#cf222e"),
}


def _as_html(text: str) -> str:
    """``text`` escaped, with its `backticked` spans shown as code rather than as backticks."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


class SetupReport(widgets.HTML):
    """The setup check's table, as a widget so that the front end can vouch for itself."""

    def __init__(self, checks: list[Check]) -> None:
        super().__init__()
        self.checks = [*checks, _FRONTEND_PENDING]
        # View counting: the front end bumps _view_count when it renders this widget.
        self.observe(self._on_views, names="_view_count")
        self._view_count = 0
        self._render()

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status != "fail" for c in self.checks)

    def _on_views(self, change: dict) -> None:
        if change["new"]:
            self.checks[-1] = _FRONTEND_OK
            self._render()

    def _render(self) -> None:
        rows = []
        for c in self.checks:
            icon, colour = _ICONS[c.status]
            fix = f"<br><small>Fix: {_as_html(c.fix)}</small>" if c.fix else ""
            rows.append(
                f'<tr data-status="{c.status}" data-check="{c.name}">'
                f'<td style="color:{colour}">{icon} {c.status}</td>'
                f"<td><code>{c.name}</code></td><td>{_as_html(c.detail)}{fix}</td></tr>"
            )
        self.value = (
            '<table class="workshop-setup-check"><tr><th></th><th>check</th><th>result</th>'
            f"</tr>{''.join(rows)}</table>"
        )


def check_shared_server() -> list[Check]:
    """If ``WORKSHOP_SERVER`` names the room's server: it answers, and the token is set."""
    if not os.environ.get(SERVER_VARIABLE, "").strip():
        return []  # working alone: nothing to check
    try:
        shared = join_room_server("setup-check-shared")
    except SharedServerError as exc:
        return [Check("shared-server", "fail", str(exc), f"fix or unset {SERVER_VARIABLE}")]
    assert shared is not None
    return [Check("shared-server", "ok", f"the room's server answers at {shared.http_url}")]


def check_progress(environ: dict[str, str] | None = None) -> list[Check]:
    """Joined to a room: whether the exercises' checks report to it, what they send, and how
    to turn it off. Alone: no row (nothing is sent anywhere)."""
    from ..progress.reporter import PROGRESS_VARIABLE, enabled

    env = os.environ if environ is None else environ
    if not env.get(SERVER_VARIABLE, "").strip():
        return []
    if not enabled(env):
        return [
            Check("progress", "ok", f"off ({PROGRESS_VARIABLE}=off): checks tell the room nothing")
        ]
    return [
        Check(
            "progress",
            "ok",
            "on: each check, hint and solution tells the room's server the exercise (01.q1), "
            "the outcome (passed, failed, or the error's class), the attempt's number and your "
            "name; never your code, answers or outputs. To turn it off: "
            f'{PROGRESS_VARIABLE}=off before starting Jupyter, or os.environ["{PROGRESS_VARIABLE}"]'
            ' = "off" in a notebook',
        )
    ]


def check_links(environ: dict[str, str] | None = None) -> Check:
    """Where the links a notebook shows lead: straight to the server, or through Jupyter's
    proxy (JupyterHub, Binder, a remote Jupyter), which needs jupyter-server-proxy."""
    try:
        proxy = detect_proxy(environ)
    except ValueError as bad:  # a WORKSHOP_PUBLIC_URL that is no address
        return Check("links", "fail", str(bad), f"fix or unset {PUBLIC_URL_VARIABLE}")
    if proxy is None:
        return Check("links", "ok", "pages open straight from this machine (no hub detected)")
    where = f"through Jupyter's proxy, {proxy.base(DEFAULT_PORT)} (found by {proxy.rule})"
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        return Check(
            "links",
            "fail",
            f"pages would open {where}, but jupyter-server-proxy is not installed",
            "pip install jupyter-server-proxy, then restart the Jupyter server (or ask the "
            "hub's admin); docs/hubs.md",
        )
    return Check("links", "ok", f"pages open {where}")


def check_redis(find: Callable[[], str | None] = find_redis_server) -> Check:
    """Lesson 06 starts a ``redis-server`` of its own: is there one to start?"""
    found = find()
    if found:
        return Check("redis-server", "ok", f"{found} (for lesson 06)")
    return Check(
        "redis-server",
        "warn",
        "not found: lessons 00 to 05 do not need it; lesson 06 (scaling out) does",
        INSTALL_HINT,
    )


def run_checks() -> SetupReport:
    """Run every check and return the report (display it as a cell's last line)."""
    checks = [check_python()]
    checks += [check_package(*requirement) for requirement in REQUIREMENTS]
    checks += [check_widgets_extension(), check_port(), check_proxy(), check_links()]
    checks += [check_redis()]
    checks += check_server()
    checks += check_shared_server()
    checks += check_progress()
    return SetupReport(checks)
