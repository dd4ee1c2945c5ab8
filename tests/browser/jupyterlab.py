"""Run notebooks in a real JupyterLab, driven by Chromium through Playwright.

nbval executes notebooks without a front end, so it cannot prove that a widget renders or
that a click reaches the kernel; this harness can. Usage in a test module:

    from tests.browser import jupyterlab
    from tests.browser.jupyterlab import error_outputs, open_notebook, run_all_cells

    lab = jupyterlab.lab            # bind the fixtures where pytest looks for them
    lab_page = jupyterlab.lab_page

    @pytest.mark.browser
    def test_something(lab_page, lab):
        open_notebook(lab_page, lab, "01-echo.ipynb")
        run_all_cells(lab_page)     # or run_cells_above(page, "text of a cell"), run_cells_from,
                                    # run_cells_between; start_run_all + wait_for_run
        assert error_outputs(lab_page) == []

`lab` is one JupyterLab server per test session, serving a temporary copy of notebooks/
(JupyterLab autosaves, and outputs must never land in the repository). `lab_page` is the
`page` fixture of conftest.py plus a clean-up that shuts down the kernels the test started.
A module that needs another JupyterLab (a hub's base URL, variables in its kernels' env)
starts one with :func:`running_lab` in a fixture of its own.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from workshop_lib.server.ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"  # the same folder conftest.py's `page` fixture uses

STARTUP_TIMEOUT = 90.0  # seconds; two slow cores, a cold import of jupyter_server
KERNEL_TIMEOUT = 90_000  # ms until a notebook's kernel is idle after opening it
RUN_ALL_TIMEOUT = 180_000  # ms for a whole notebook to execute

# Plugins that would reach the internet or pop up toasts over the notebook.
DISABLED_PLUGINS = [
    "@jupyterlab/apputils-extension:announcements",  # news feed + update check
]

# User settings written into a fresh settings dir, so no personal settings leak in.
USER_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # A notebook without kernelspec metadata would otherwise stop at a "Select Kernel" dialog.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "autoStartDefaultKernel": True,
        # Cells get metadata.execution timestamps, so cell_durations() can report slow ones.
        "recordTiming": True,
        # Every cell stays in the DOM and is painted (the default, contentVisibility, skips
        # cells out of view, and "full" removes them): a test reads any cell's output and
        # screenshots any plot after a Run All, without scrolling through the notebook.
        "windowingMode": "none",
    },
}


@dataclass
class JupyterLab:
    """A running `jupyter lab` subprocess; `url()` builds tokenised URLs into it."""

    base_url: str  # absolute, ending in "/": http://127.0.0.1:PORT/ or .../user/learner/
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        """The one port the browser needs."""
        return int(self.base_url.split(":")[2].split("/")[0])

    def url(self, path: str = "") -> str:
        """Absolute URL of `path` (no leading slash) with the token as a query parameter."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def api(self, method: str, path: str, timeout: float = 10.0) -> Any:
        """Call the Jupyter Server REST API; returns the decoded JSON body (or None)."""
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's log (kernels' stderr lands there too)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def shutdown_kernels(self) -> None:
        """Delete every session (and so shut down its kernel), so tests don't share state."""
        for session in self.api("GET", "api/sessions"):
            with contextlib.suppress(urllib.error.HTTPError):  # already gone
                self.api("DELETE", f"api/sessions/{session['id']}", timeout=30)
        for kernel in self.api("GET", "api/kernels"):
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"api/kernels/{kernel['id']}", timeout=30)


def _write_config(base: Path) -> dict[str, str]:
    """Fresh Jupyter config/data/runtime dirs under `base`; returns the env vars for them."""
    config_dir = base / "config"
    (config_dir / "labconfig").mkdir(parents=True)
    page_config = {"disabledExtensions": dict.fromkeys(DISABLED_PLUGINS, True)}
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(page_config))
    settings_dir = base / "user-settings"
    for relative, values in USER_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for name in ("data", "runtime", "workspaces", "ipython"):
        (base / name).mkdir()
    return {
        # Isolated dirs: a kernelspec or setting in the user's home must not change the test.
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
    }


def _start_lab(
    base: Path,
    base_url: str = "/",
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> JupyterLab:
    """Start `jupyter lab` on a copy of notebooks/ and wait until /api/status answers.

    ``base_url``: JupyterLab's own (``/user/learner/`` as on a hub); ``env``: added to the
    environment of the server and so of every kernel it starts; ``args``: more options."""
    root_dir = base / "notebooks"
    if NOTEBOOKS.is_dir():
        shutil.copytree(
            NOTEBOOKS,
            root_dir,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    else:
        root_dir.mkdir()
    env = {**os.environ, **_write_config(base), **(env or {})}
    # The kernels must import this checkout's workshop_lib, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    token = secrets.token_hex(24)
    # A port found free can be taken by another process before JupyterLab binds it, on a
    # machine running other suites: then JupyterLab says so and exits, and a new port is tried.
    for attempt in range(3):
        lab = _launch_lab(base, base_url, env, args, root_dir, token)
        try:
            return _wait_for_lab(lab)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable: the loop returns or raises")


class PortTaken(RuntimeError):
    """JupyterLab exited because its port was taken between choosing it and binding it."""


def _launch_lab(
    base: Path,
    base_url: str,
    env: dict[str, str],
    args: tuple[str, ...],
    root_dir: Path,
    token: str,
) -> JupyterLab:
    port = free_port()
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--ServerApp.base_url={base_url}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        # No network: no news feed, no update check, no PyPI extension listings.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={base / 'user-settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        # window.jupyterapp: the command registry and the kernel status, as Galata uses them.
        "--LabApp.expose_app_in_browser=True",
        *args,
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root; Jupyter refuses otherwise
    log_path = base / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can kill it whole
        )
    return JupyterLab(f"http://127.0.0.1:{port}{base_url}", token, root_dir, log_path, process)


def _wait_for_lab(lab: JupyterLab) -> JupyterLab:
    """``lab`` once its /api/status answers; PortTaken if it exited for want of its port."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if (code := lab.process.poll()) is not None:
            tail = lab.log_tail()
            if "is not available" in tail and "could not be started because port" in tail:
                raise PortTaken(tail)
            raise RuntimeError(f"jupyter lab exited with {code}:\n{tail}")
        try:
            lab.api("GET", "api/status", timeout=2)
            return lab
        except (OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() > deadline:
            _stop_lab(lab)
            raise RuntimeError(
                f"jupyter lab did not answer in {STARTUP_TIMEOUT}s:\n{lab.log_tail()}"
            )
        time.sleep(0.25)


def _descendants(pid: int) -> list[Any]:
    """psutil.Process objects for every process below `pid` (kernels, what they started)."""
    try:
        import psutil  # ipykernel's dependency, so always present next to JupyterLab
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop_lab(lab: JupyterLab) -> None:
    """SIGTERM the server's group (it shuts its kernels down), then SIGKILL what remains."""
    process = lab.process
    # jupyter_client starts each kernel with start_new_session=True: killing the server's
    # group would miss them, so remember them (and any they started) before stopping.
    leftovers = _descendants(process.pid)
    if os.name == "posix":
        _kill_group(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    if os.name == "posix":
        _kill_group(process.pid, signal.SIGKILL)
    else:
        process.kill()
    for child in leftovers:
        # is_running() also checks the start time, so a reused pid is never killed.
        with contextlib.suppress(Exception):
            if child.is_running():
                child.kill()
    process.wait(timeout=10)


@contextlib.contextmanager
def running_lab(
    base: Path,
    base_url: str = "/",
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[JupyterLab]:
    """A JupyterLab server in ``base`` for the ``with`` block (see :func:`_start_lab`)."""
    running = _start_lab(base, base_url, env, args)
    try:
        yield running
    finally:
        _stop_lab(running)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """One JupyterLab server for the session, on a free port with a random token."""
    with running_lab(tmp_path_factory.mktemp("jupyterlab")) as running:
        yield running


@pytest.fixture
def lab_page(page: Page, lab: JupyterLab) -> Iterator[Page]:
    """conftest's `page`; afterwards every kernel the test started is shut down."""
    try:
        yield page
    finally:
        with contextlib.suppress(OSError):  # a dead server: the test failed with its log
            lab.shutdown_kernels()


# JavaScript run in the page. `panelFor(path)` finds the notebook panel open on `path`.
_JS_PANEL = """
const panelFor = (path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content
        && widget.content.model) return widget;
  }
  return null;
};
"""


def _with_panel(body: str) -> str:
    """A JS function of `path` whose body can call panelFor(path)."""
    return "(path) => {" + _JS_PANEL + body + "}"


_JS_KERNEL_READY = _with_panel(
    """
  const panel = panelFor(path);
  if (!panel || !panel.context.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected'
    && panel.content.node.querySelector('.jp-Cell') !== null;
"""
)

# Arguments: {path, command, start, stop}; the cells start..stop-1 are the ones it runs.
_JS_START_RUN = (
    """({path, command, start, stop}) => {"""
    + _JS_PANEL
    + """
  const app = window.jupyterapp;
  const panel = panelFor(path);
  app.shell.activateById(panel.id);
  // A stale count (a notebook saved with outputs) must not pass for a fresh run.
  const models = panel.content.model.cells;
  for (let i = start; i < stop; i++) {
    const cell = models.get(i);
    if (cell.type === 'code') cell.executionCount = null;
  }
  window.__labHarnessRun = {done: false, ok: null, error: null};
  // The same commands as the Run menu's items; they resolve when every cell has replied
  // (or at the first error, where Lab stops).
  Promise.resolve(app.commands.execute(command)).then(
    (ok) => { window.__labHarnessRun = {done: true, ok: ok !== false, error: null}; },
    (err) => { window.__labHarnessRun = {done: true, ok: false, error: String(err)}; },
  );
}"""
)

_JS_RUN_STATE = (
    """({path, start, stop}) => {"""
    + _JS_PANEL
    + """
  const panel = panelFor(path);
  const run = window.__labHarnessRun;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const idle = !!kernel && kernel.status === 'idle';
  const pending = [];
  const models = panel.content.model.cells;
  for (let i = start; i < Math.min(stop, models.length); i++) {
    const cell = models.get(i);
    if (cell.type === 'code' && cell.sharedModel.getSource().trim() !== ''
        && cell.executionCount === null) pending.push(i);
  }
  const prompts = Array.from(panel.content.node.querySelectorAll(
    '.jp-CodeCell .jp-InputPrompt')).map((node) => node.textContent.trim());
  const busy = prompts.some((text) => text.includes('*'));
  return {done: !!(run && run.done) && idle && !busy, run, idle, busy, pending, prompts};
}"""
)

_JS_FIND_CELL = (
    """({path, text}) => {"""
    + _JS_PANEL
    + """
  const panel = panelFor(path);
  const models = panel.content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type === 'code' && cell.sharedModel.getSource().includes(text)) {
      panel.content.activeCellIndex = i;
      return {index: i, count: models.length};
    }
  }
  return {index: -1, count: models.length};
}"""
)


# Arguments: {path, start, stop}; selects the cells start..stop-1 (the first one active).
_JS_SELECT_CELLS = (
    """({path, start, stop}) => {"""
    + _JS_PANEL
    + """
  const notebook = panelFor(path).content;
  notebook.activeCellIndex = start;
  notebook.extendContiguousSelectionTo(stop - 1);
}"""
)


def _current_path(page: Page) -> str:
    path = page.evaluate("() => window.__labHarnessPath || null")
    if not path:
        raise AssertionError("no notebook opened with open_notebook() in this page")
    return path


def kernel_with_env(lab: JupyterLab, notebook: str, env: dict[str, str]) -> None:
    """Make the lab's copy of ``notebook`` start its kernel with ``env`` added: a kernelspec
    of its own (Jupyter's kernel.json "env"), named in the copy's metadata. For a lesson
    run as learners in a class run it, with the variables their instructor hands out."""
    import nbformat

    name = "python3-" + re.sub(r"[^a-z0-9]+", "-", notebook.lower()).strip("-")
    spec_dir = lab.root_dir.parent / "data" / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({', '.join(env)})",
        "language": "python",
        "env": env,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    path = lab.root_dir / notebook
    copy = nbformat.read(path, as_version=4)
    copy.metadata["kernelspec"] = {"name": name, "display_name": spec["display_name"],
                                   "language": "python"}  # fmt: skip
    nbformat.write(copy, path)


def open_notebook(page: Page, lab: JupyterLab, name: str, timeout: float = KERNEL_TIMEOUT) -> None:
    """Open `name` (relative to the lab's root) in a fresh workspace; wait for an idle kernel."""
    if not (lab.root_dir / name).is_file():
        raise AssertionError(f"{name} is not in {lab.root_dir} (copied from {NOTEBOOKS})")
    # A workspace of its own: otherwise JupyterLab restores the tabs an earlier test left open.
    workspace = f"t{uuid.uuid4().hex[:10]}"
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{quote(name)}"))
    try:
        page.wait_for_function(_JS_KERNEL_READY, arg=name, timeout=timeout, polling=250)
    except Exception as exc:
        raise AssertionError(
            f"{name}: no idle kernel within {timeout / 1000:.0f}s\n"
            f"--- jupyter lab log ---\n{lab.log_tail()}"
        ) from exc
    page.evaluate("(path) => { window.__labHarnessPath = path; }", name)


def _run(page: Page, command: str, start: int, stop: int, timeout: float) -> None:
    """Execute a notebook run command; wait for it, an idle kernel and counts on start..stop."""
    _start_run(page, command, start, stop)
    wait_for_run(page, timeout)


def _start_run(page: Page, command: str, start: int, stop: int) -> None:
    path = _current_path(page)
    span = {"path": path, "start": start, "stop": stop}
    page.evaluate("(span) => { window.__labHarnessSpan = span; }", span)
    page.evaluate(_JS_START_RUN, {**span, "command": command})


def wait_for_run(page: Page, timeout: float = RUN_ALL_TIMEOUT) -> None:
    """Wait until the run started last (by any run_* function) is done: every cell of it
    has an execution count and the kernel is idle. Fails with the error outputs if a cell
    raised (Lab stops there) or if it did not finish within ``timeout`` ms."""
    path = _current_path(page)
    span = page.evaluate("() => window.__labHarnessSpan")
    try:
        page.wait_for_function(
            f"(span) => ({_JS_RUN_STATE})(span).done", arg=span, timeout=timeout, polling=250
        )
    except Exception as exc:
        state = page.evaluate(_JS_RUN_STATE, span)
        raise AssertionError(
            f"{path}: the run did not finish within {timeout / 1000:.0f}s: {state}\n"
            f"errors so far: {error_outputs(page)}"
        ) from exc
    state = page.evaluate(_JS_RUN_STATE, span)
    if state["pending"]:
        raise AssertionError(
            f"{path}: cells {state['pending']} did not run; error outputs:\n"
            + "\n---\n".join(error_outputs(page))
        )


def _select_cell(page: Page, text: str) -> tuple[int, int]:
    """Make the first code cell containing `text` active; returns (its index, cell count)."""
    path = _current_path(page)
    found = page.evaluate(_JS_FIND_CELL, {"path": path, "text": text})
    if found["index"] < 0:
        raise AssertionError(f"{path}: no code cell contains {text!r}")
    return found["index"], found["count"]


def run_all_cells(page: Page, timeout: float = RUN_ALL_TIMEOUT) -> None:
    """Run > Run All Cells, then wait until every code cell has an execution count and the
    kernel is idle. Fails with the error outputs if a cell raised (Lab stops there)."""
    start_run_all(page)
    wait_for_run(page, timeout)


def start_run_all(page: Page) -> None:
    """Run > Run All Cells, without waiting: to watch the front end (a canvas, a widget)
    while the notebook runs on. :func:`wait_for_run` waits for the end."""
    _, count = _select_cell(page, "")
    _start_run(page, "notebook:run-all-cells", 0, count)


def run_cells_above(page: Page, text: str, timeout: float = RUN_ALL_TIMEOUT) -> None:
    """Run every cell above the first code cell containing `text` (Run All Above Selected
    Cell): to use a notebook's widgets before its clean-up cell closes them."""
    index, _ = _select_cell(page, text)
    _run(page, "notebook:run-all-above", 0, index, timeout)


def start_run_above(page: Page, text: str) -> None:
    """Run All Above the first code cell containing ``text``, without waiting (see
    :func:`start_run_all`)."""
    index, _ = _select_cell(page, text)
    _start_run(page, "notebook:run-all-above", 0, index)


def run_cells_from(page: Page, text: str, timeout: float = RUN_ALL_TIMEOUT) -> None:
    """Run the first code cell containing `text` and every cell below it."""
    index, count = _select_cell(page, text)
    _run(page, "notebook:run-all-below", index, count, timeout)


def run_cells_between(
    page: Page, start_text: str, stop_text: str, timeout: float = RUN_ALL_TIMEOUT
) -> None:
    """Run the first code cell containing `start_text` and every cell below it, up to (not
    including) the first code cell containing `stop_text`: to look at a widget between two
    sections of a notebook, then go on without running the earlier cells again."""
    start, _ = _select_cell(page, start_text)
    stop, _ = _select_cell(page, stop_text)
    if stop <= start:
        raise AssertionError(f"{stop_text!r} (cell {stop}) is not below {start_text!r} ({start})")
    page.evaluate(_JS_SELECT_CELLS, {"path": _current_path(page), "start": start, "stop": stop})
    # Run > Run Selected Cell(s), without advancing: exactly the selected start..stop-1.
    _run(page, "notebook:run-cell", start, stop, timeout)


def run_cell(page: Page, text: str, timeout: float = RUN_ALL_TIMEOUT) -> int:
    """Run only the first code cell containing ``text`` (Run > Run Selected Cell, as a learner
    runs one cell again with Ctrl+Enter) and wait for it; returns the cell's index."""
    index, _ = _select_cell(page, text)
    page.evaluate(
        _JS_SELECT_CELLS, {"path": _current_path(page), "start": index, "stop": index + 1}
    )
    _run(page, "notebook:run-cell", index, index + 1, timeout)
    return index


def run_cells_above_one_by_one(
    page: Page, text: str, pause_ms: int = 300, timeout: float = RUN_ALL_TIMEOUT
) -> None:
    """Run every code cell above the first one containing ``text`` as a learner does, one
    at a time, each after the one before has finished and ``pause_ms`` of reading: the kernel
    is idle between cells, as it never is in a Run All (a widget's messages then arrive
    between cells as well as during them).
    ``timeout`` is per cell."""
    path = _current_path(page)
    stop, _ = _select_cell(page, text)
    types = page.evaluate(
        _with_panel(
            """
  const models = panelFor(path).content.model.cells;
  const types = [];
  for (let i = 0; i < models.length; i++) types.push(models.get(i).type);
  return types;
"""
        ),
        path,
    )
    for index in range(stop):
        if types[index] != "code":
            continue
        page.evaluate(_JS_SELECT_CELLS, {"path": path, "start": index, "stop": index + 1})
        _run(page, "notebook:run-cell", index, index + 1, timeout)
        page.wait_for_timeout(pause_ms)


def error_outputs(page: Page) -> list[str]:
    """Texts of the error outputs in the open notebook: every traceback a cell showed, stderr
    that holds one (a thread's exception), and tracebacks inside Output widgets."""
    path = _current_path(page)
    return page.evaluate(
        _with_panel(
            """
  const ansi = /\\x1b\\[[0-9;]*[A-Za-z]/g;
  const found = [];
  // Cell outputs from the model: in the DOM an error is just stderr-coloured text, and a
  // SyntaxError's traceback does not even contain the word "Traceback".
  const models = panelFor(path).content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    for (const output of cell.outputs.toJSON()) {
      if (output.output_type === 'error') {
        found.push([`${output.ename}: ${output.evalue}`, ...output.traceback].join('\\n'));
      } else if (output.output_type === 'stream' && output.name === 'stderr') {
        const text = [].concat(output.text).join('');
        if (text.includes('Traceback')) found.push(text);
      }
    }
  }
  // Output widgets keep their outputs in widget models; what they rendered is in the DOM.
  const widgetOutputs = panelFor(path).content.node.querySelectorAll(
    '.jupyter-widgets .jp-OutputArea-output');
  for (const node of widgetOutputs) {
    const mime = node.getAttribute('data-mime-type') || '';
    const text = node.innerText || node.textContent || '';
    if ((mime.startsWith('application/vnd.jupyter.std') || mime.endsWith('.error'))
        && text.includes('Traceback')) found.push(text);
  }
  return found.map((text) => text.replace(ansi, '').trim());
"""
        ),
        path,
    )


def code_outputs(page: Page) -> list[dict[str, Any]]:
    """Every output of the open notebook's code cells, as nbformat JSON, from the model:
    JupyterLab renders only the cells near the viewport, so the DOM may not hold them."""
    return page.evaluate(
        _with_panel(
            """
  const found = [];
  const models = panelFor(path).content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type === 'code') found.push(...cell.outputs.toJSON());
  }
  return found;
"""
        ),
        _current_path(page),
    )


def _joined(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def printed_text(page: Page) -> str:
    """What the open notebook's cells printed (stdout) or showed as Markdown."""
    printed = []
    for output in code_outputs(page):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            printed.append(_joined(output["text"]))
        elif "text/markdown" in output.get("data", {}):
            printed.append(_joined(output["data"]["text/markdown"]))
    return "\n".join(printed)


def html_outputs(page: Page) -> list[str]:
    """The text/html outputs of the open notebook's cells (a table, a check's verdict)."""
    return [
        _joined(output["data"]["text/html"])
        for output in code_outputs(page)
        if "text/html" in output.get("data", {})
    ]


def cell_durations(page: Page) -> list[tuple[int, str, float]]:
    """(index, first line, seconds) of every code cell that ran in the open notebook, from
    the kernel's busy message to its reply (the timing JupyterLab records with
    recordTiming; queued time is not counted)."""
    path = _current_path(page)
    rows = page.evaluate(
        _with_panel(
            """
  const models = panelFor(path).content.model.cells;
  const rows = [];
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    const timing = cell.getMetadata('execution') || {};
    const start = Date.parse(timing['iopub.status.busy']);
    const end = Date.parse(timing['shell.execute_reply']);
    if (Number.isNaN(start) || Number.isNaN(end)) continue;
    const first = cell.sharedModel.getSource().split('\\n')[0];
    rows.push([i, first, (end - start) / 1000]);
  }
  return rows;
"""
        ),
        path,
    )
    return [(index, first, seconds) for index, first, seconds in rows]


def output_images(page: Page) -> list[tuple[int, bytes]]:
    """(cell index, PNG bytes) of every image the open notebook's cells output, from the
    model: what the kernel sent, before any browser drew it."""
    path = _current_path(page)
    rows = page.evaluate(
        _with_panel(
            """
  const found = [];
  const models = panelFor(path).content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    for (const output of cell.outputs.toJSON()) {
      if (output.data && output.data['image/png']) found.push([i, output.data['image/png']]);
    }
  }
  return found;
"""
        ),
        path,
    )
    return [(index, base64.b64decode("".join(data))) for index, data in rows]


def ink(png: bytes, columns: int = 4, rows: int = 3) -> list[float]:
    """The share of pixels that are not (nearly) white in each part of a ``columns`` by
    ``rows`` grid over the image, row by row. A drawn plot has ink in every part (axes,
    ticks, labels, bars, lines); a blank or half-drawn one has parts with none."""
    from PIL import Image  # matplotlib's dependency, so here wherever the notebooks run

    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    shares = []
    for row in range(rows):
        for column in range(columns):
            box = (
                column * width // columns,
                row * height // rows,
                (column + 1) * width // columns,
                (row + 1) * height // rows,
            )
            histogram = image.crop(box).histogram()
            shares.append(1 - sum(histogram[245:]) / max(1, sum(histogram)))
    return shares


def painted_image(page: Page, image: Locator, name: str) -> bytes:
    """A screenshot of a rendered ``<img>`` once the browser has decoded and painted it
    (saved as test-artifacts/<name>.png); the bytes, for :func:`ink`."""
    image.scroll_into_view_if_needed()
    # decode() resolves when the image is ready to paint; two animation frames later it is
    # on screen.
    image.evaluate(
        "(img) => img.decode().then(() => new Promise((done) =>"
        " requestAnimationFrame(() => requestAnimationFrame(done))))"
    )
    return screenshot(page, name, image).read_bytes()


def screenshot(page: Page, name: str, element: Locator | None = None) -> Path:
    """Save a PNG as test-artifacts/<name>.png for a person to look at: the full page, or
    only `element` (scrolled into view first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    if element is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        element.screenshot(path=str(path))
    return path
