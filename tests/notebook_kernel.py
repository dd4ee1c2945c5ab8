"""A real Jupyter kernel that runs the notebooks' own cells, as a learner does: one at a
time, out of order, twice, or interrupted (Kernel → Interrupt).

    kernel = Kernel(NOTEBOOKS, env={"WORKSHOP_NAME": "ada"})
    ran = kernel.run(cell("01-echo.ipynb", "server = start_server()"))
    assert_ok(ran)
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"


@dataclass
class Ran:
    """What one cell showed: printed text, and its error's name and traceback lines."""

    printed: str = ""
    error: str | None = None
    traceback: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Kernel:
    """An ipykernel of this Python that runs cells as JupyterLab would send them."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.kernel_spec.argv[0] = sys.executable  # this venv's ipykernel
        self.manager.start_kernel(cwd=str(cwd), env={**os.environ, **(env or {})})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(
        self,
        source: str,
        timeout: float = 90,
        interrupt_when: Callable[[Ran], bool] | None = None,
    ) -> Ran:
        """Run ``source`` as one cell; with ``interrupt_when``, Kernel → Interrupt as soon as
        it holds (given what the cell has shown so far), as a learner would press it."""
        ran = Ran()

        def collect(message: dict[str, Any]) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                ran.printed += content["text"]
            elif message["msg_type"] == "execute_result":
                ran.printed += content["data"].get("text/plain", "")
            elif message["msg_type"] == "error":
                ran.error = content["ename"]
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
            self.client.execute_interactive(source, timeout=timeout, output_hook=collect)
        finally:
            done.set()
        ran.seconds = time.monotonic() - started
        return ran

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def _plain(line: str) -> str:
    """A traceback line without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def cell(notebook: str, text: str) -> str:
    """The source of the one code cell of ``notebook`` that contains ``text``."""
    cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
    found = [
        "".join(c["source"])
        for c in cells
        if c["cell_type"] == "code" and text in "".join(c["source"])
    ]
    assert len(found) == 1, f"{len(found)} cells of {notebook} hold {text!r}"
    return found[0]


def assert_ok(ran: Ran) -> None:
    assert ran.error is None, "\n".join(ran.traceback)


def assert_one_line(ran: Ran, *words: str) -> None:
    """The cell failed with one line, and the line says ``words``."""
    assert ran.error is not None, f"the cell did not fail: {ran.printed}"
    text = "\n".join(ran.traceback)
    assert len(ran.traceback) == 1 and "\n" not in ran.traceback[0].strip(), text
    for word in words:
        assert word in text, text
