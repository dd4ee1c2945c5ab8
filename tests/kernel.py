"""A real Jupyter kernel for tests that must run code the way a learner does: as cells, on
ipykernel's running event loop (top-level ``await`` and all), after a notebook's own set-up.

    with NotebookKernel(cwd) as kernel:
        for cell in setup_cells(notebook):
            kernel.run(cell)
        ran = kernel.run("q1.check(shout)")
        ran.result  # "Not yet: ..." as the cell's Out[] shows it
"""

from __future__ import annotations

import ast
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.manager import KernelManager

__all__ = ["CellRun", "NotebookKernel", "code_cells", "imports_of", "setup_cells"]


@dataclass
class CellRun:
    """What one cell did: its ``Out[]`` (text/plain), what it printed, and any error."""

    source: str
    result: str | None = None
    html: str | None = None
    stdout: str = ""
    error: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"cell:\n{self.source}", f"Out: {self.result!r}"]
        if self.stdout:
            parts.append(f"printed: {self.stdout[-2000:]}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "\n".join(parts)


class NotebookKernel:
    """An ipykernel of this Python, in ``cwd``, with the client that runs cells in it."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.manager = KernelManager(kernel_name="python3")
        self.client: Any = None

    def __enter__(self) -> NotebookKernel:
        # This Python's ipykernel, whatever kernelspecs the machine has.
        self.manager.kernel_spec.argv[0] = sys.executable
        self.manager.start_kernel(cwd=str(self.cwd), env=self.env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)

    def run(self, source: str, timeout: float = 60) -> CellRun:
        """Run ``source`` as one cell and return what it showed."""
        ran = CellRun(source)

        def collect(message: dict[str, Any]) -> None:
            kind, content = message["msg_type"], message["content"]
            if kind in {"stream", "execute_result", "display_data", "error"}:
                ran.outputs.append({"type": kind, **content})
            if kind == "stream":
                ran.stdout += content["text"]
            elif kind == "execute_result":
                ran.result = content["data"].get("text/plain")
                ran.html = content["data"].get("text/html")
            elif kind == "error":
                ran.error = f"{content['ename']}: {content['evalue']}"

        reply = self.client.execute_interactive(
            source, timeout=timeout, output_hook=collect, allow_stdin=False
        )
        if reply["content"]["status"] != "ok" and ran.error is None:
            ran.error = f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}"
        return ran


def code_cells(notebook: Path) -> list[str]:
    """The source of every code cell of ``notebook``, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


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
