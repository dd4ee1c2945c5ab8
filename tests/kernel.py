"""A real Jupyter kernel for tests that run code the way a learner does: as cells, on
ipykernel's running event loop (top-level ``await`` and all), one at a time, out of order,
twice, or interrupted (Kernel → Interrupt); and the helpers that find a notebook's cells.

    with Kernel(NOTEBOOKS, env={"WORKSHOP_NAME": "ada"}) as kernel:
        for source in setup_cells(NOTEBOOKS / "01-echo.ipynb", before="q1.check("):
            assert_ok(kernel.run(source))
        ran = kernel.run("q1.check(shout)")
        ran.result  # "Not yet: ..." as the cell's Out[] shows it
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.manager import KernelManager

from tests.conftest import ROOT

__all__ = [
    "NOTEBOOKS",
    "CellRun",
    "Kernel",
    "assert_ok",
    "assert_one_line",
    "cell",
    "code_cells",
    "imports_of",
    "setup_cells",
]

NOTEBOOKS = ROOT / "notebooks"


@dataclass
class CellRun:
    """What one cell showed: its ``Out[]`` (text/plain and text/html), what it printed, its
    error's name, message and plain traceback lines, every output, and how long it took."""

    source: str
    result: str | None = None
    html: str | None = None
    printed: str = ""
    shown: str = ""  # printed text and Out[]'s text/plain, in the order the cell showed them
    error: str | None = None
    message: str | None = None
    traceback: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        parts = [f"cell:\n{self.source}", f"Out: {self.result!r}"]
        if self.printed:
            parts.append(f"printed: {self.printed[-2000:]}")
        if self.error:
            parts.append(f"error: {self.error}: {self.message}")
            parts.extend(self.traceback)
        return "\n".join(parts)


class Kernel:
    """An ipykernel of this Python in ``cwd``, with the client that runs cells in it as
    JupyterLab sends them. ``env`` changes this process's environment for the kernel (a
    value of None removes the variable). Close it, or use it as a context manager."""

    def __init__(self, cwd: Path, env: Mapping[str, str | None] | None = None) -> None:
        environment = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        self.manager = KernelManager(kernel_name="python3")
        # This Python's ipykernel, whatever kernelspecs the machine has.
        self.manager.kernel_spec.argv[0] = sys.executable
        self.manager.start_kernel(cwd=str(cwd), env=environment)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=60)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.stop_channels()
        # Not killed: a shutdown request lets the kernel's own clean-up stop its servers.
        self.manager.shutdown_kernel(now=False)

    def run(
        self,
        source: str,
        timeout: float = 90,
        interrupt_when: Callable[[CellRun], bool] | None = None,
    ) -> CellRun:
        """Run ``source`` as one cell and return what it showed; with ``interrupt_when``,
        Kernel → Interrupt as soon as it holds (given what the cell has shown so far), as a
        learner would press it."""
        ran = CellRun(source)

        def collect(message: dict[str, Any]) -> None:
            kind, content = message["msg_type"], message["content"]
            if kind in {"stream", "execute_result", "display_data", "error"}:
                ran.outputs.append({"type": kind, **content})
            if kind == "stream":
                ran.printed += content["text"]
                ran.shown += content["text"]
            elif kind == "execute_result":
                ran.result = content["data"].get("text/plain")
                ran.html = content["data"].get("text/html")
                ran.shown += ran.result or ""
            elif kind == "error":
                ran.error, ran.message = content["ename"], content["evalue"]
                ran.traceback = [_plain(line) for line in content["traceback"]]

        done = threading.Event()

        def interrupt() -> None:
            assert interrupt_when is not None
            while not done.wait(0.05):
                if interrupt_when(ran):
                    self.manager.interrupt_kernel()
                    return

        if interrupt_when is not None:
            threading.Thread(target=interrupt, daemon=True).start()
        started = time.monotonic()
        try:
            reply = self.client.execute_interactive(
                source, timeout=timeout, output_hook=collect, allow_stdin=False
            )
        finally:
            done.set()
        ran.seconds = time.monotonic() - started
        if reply["content"]["status"] != "ok" and ran.error is None:
            ran.error = reply["content"].get("ename")
            ran.message = reply["content"].get("evalue")
        return ran


def _plain(line: str) -> str:
    """A traceback line without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def code_cells(notebook: Path) -> list[str]:
    """The source of every code cell of ``notebook``, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def cell(notebook: str | Path, text: str) -> str:
    """The source of the one code cell of ``notebook`` (a name in notebooks/, or a path)
    that contains ``text``."""
    found = [source for source in code_cells(NOTEBOOKS / notebook) if text in source]
    assert len(found) == 1, f"{len(found)} cells of {notebook} hold {text!r}"
    return found[0]


def imports_of(source: str) -> list[str]:
    """The top-level imports of a cell (IPython syntax such as ``!cmd`` allowed)."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    imports = (node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    return [ast.unparse(node) for node in imports]


def setup_cells(notebook: Path, before: str) -> list[str]:
    """What a learner has run when they reach the cell that contains ``before``: the
    notebook's first code cell (it starts the lesson's server), then the imports of every
    code cell above (the demos themselves are left out: they take time and prove nothing
    about the exercises)."""
    cells = code_cells(notebook)
    above = cells[: next(i for i, cell in enumerate(cells) if before in cell)]
    imports = [line for cell in above[1:] for line in imports_of(cell)]
    return [above[0], "\n".join(dict.fromkeys(imports))]


def assert_ok(ran: CellRun) -> None:
    """The cell raised nothing."""
    assert ran.error is None, str(ran)


def assert_one_line(ran: CellRun, *words: str) -> None:
    """The cell failed with one line, and the line says ``words``."""
    assert ran.error is not None, f"the cell did not fail: {ran.shown}"
    text = "\n".join(ran.traceback)
    assert len(ran.traceback) == 1 and "\n" not in ran.traceback[0].strip(), text
    for word in words:
        assert word in text, text
