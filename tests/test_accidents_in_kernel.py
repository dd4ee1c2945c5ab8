"""A learner's accidents where a learner meets them: the notebooks' own cells in a real
Jupyter kernel, run out of order, twice, or interrupted. Each gets one line that says what
happened and which cell to run, not a traceback through asyncio and websockets.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
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

    def run(self, source: str, timeout: float = 90, interrupt_after: float | None = None) -> Ran:
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

        timer = None
        if interrupt_after is not None:  # Kernel → Interrupt, while the cell waits
            timer = threading.Timer(interrupt_after, self.manager.interrupt_kernel)
            timer.start()
        started = time.monotonic()
        try:
            self.client.execute_interactive(source, timeout=timeout, output_hook=collect)
        finally:
            if timer is not None:
                timer.cancel()
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


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    running = Kernel(NOTEBOOKS)
    try:
        yield running
    finally:
        running.close()


def test_01_after_the_clean_up_each_cell_says_which_cell_to_run(kernel: Kernel) -> None:
    nb = "01-echo.ipynb"
    for text in (
        "server = start_server()",
        "print(format_handshake(websocket))",
        "connect_sync(server.links.ws",
        "echo_panel = EchoPanel(",
        "log_view = LogView()",
    ):
        assert_ok(kernel.run(cell(nb, text)))
    assert "came back in" in kernel.run(cell(nb, 'echo_panel.send("sent from a cell")')).printed
    assert_ok(kernel.run(cell(nb, "server.stop()")))  # the clean-up

    # The panel's round trip: the library's own sentence, not NoneType.__format__.
    after = kernel.run(cell(nb, 'echo_panel.send("sent from a cell")'))
    assert_ok(after)
    assert "no server at" in after.printed and "run the cell that starts it" in after.printed

    # websockets' own client, as the lesson uses it: asyncio's refusal, then the sync one.
    for text in ('await websocket.send("text stays text")', "connect_sync(server.links.ws"):
        ran = kernel.run(cell(nb, text))
        assert_one_line(ran, "'workshop' was stopped", "run the cell that starts it")
        assert ran.error == "ConnectionRefusedError"


def test_an_interrupted_wait_is_one_line(kernel: Kernel) -> None:
    assert_ok(kernel.run(cell("01-echo.ipynb", "server = start_server()")))
    assert_ok(kernel.run("from websockets.asyncio.client import connect"))
    waiting = "async with connect(server.links.ws('/echo')) as ws:\n    await ws.recv()"
    ran = kernel.run(waiting, interrupt_after=2)
    assert_one_line(ran, "Kernel → Interrupt", "run it again")
    blocked = kernel.run("import time\ntime.sleep(30)", interrupt_after=2)
    assert_one_line(blocked, "you interrupted this cell")
    assert blocked.seconds < 20
    # An error of the learner's own keeps its traceback.
    assert len(kernel.run("1 / 0").traceback) > 1
    assert_ok(kernel.run("server.stop()"))


def test_06_four_people_run_twice_starts_over(kernel: Kernel, redis_url: str) -> None:
    nb = "06-scaling-out.ipynb"
    try:
        assert_ok(kernel.run(cell(nb, "redis = LocalRedis(persist=True).start()")))
        assert_ok(kernel.run(cell(nb, 'ada = ChatClient(one.ws("/chat"), "ada")')))
        stopped = kernel.run(cell(nb, "ada.close()"))
        assert_ok(stopped)
        assert "(None, None)" not in stopped.printed and stopped.printed.count(" stopped>") == 2
        four = cell(nb, 'names = ["ada", "bob", "grace", "linus"]')
        for run in ("first", "second"):
            ran = kernel.run(four, timeout=60)
            assert_ok(ran)
            assert "one order for all four: True" in ran.printed, (run, ran.printed)
            assert "['ada', 'bob', 'grace', 'linus']" in ran.printed, (run, ran.printed)
        assert ran.seconds < 12, f"the second run took {ran.seconds:.1f} s"
    finally:
        kernel.run("ServerProcess.stop_all(); redis.stop()")
