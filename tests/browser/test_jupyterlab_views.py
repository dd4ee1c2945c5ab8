"""Lesson 02's ball views keep reporting to the kernel after a batch of cells (a Run All).

A ball view's JavaScript reports what it received to the kernel twice a second. Reported as
widget state (``save_changes``), ipywidgets sends a model's next update only once the kernel
has said "idle" for the one before; ipykernel 7 handles a widget message that arrives while
a cell holds the main shell (every moment of a Run All) without any busy/idle status, so the
first report that lands there is the view's last. Only a front end reports, so only a real
JupyterLab in Chromium shows it.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    open_notebook,
    run_cells_above,
    screenshot,
)

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

NOTEBOOK = "02-bouncing-ball.ipynb"
# Every cell above section 6 as one batch: both views, the async tickers of section 5 (4 s
# during which the views report into a busy kernel) and the blocking 2 s measurement.
STOP_AT = 'lab = start_server(port=0, name="lab")'
WIDGET_TIMEOUT = 30_000  # ms
GROWTH_TIMEOUT = 20.0  # s for both views' counts to grow by GROWTH frames in the kernel
GROWTH = 30  # frames: half a second of a 60 Hz stream

# Runs `code` in the notebook's kernel as an execute request of its own (as a cell would,
# without adding one to the notebook); resolves to what it printed, or the error.
_JS_EXECUTE = """async ({path, code}) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (!(widget.context && widget.context.path === path)) continue;
    const kernel = widget.sessionContext.session.kernel;
    const future = kernel.requestExecute({code, silent: false, store_history: false});
    let printed = '';
    future.onIOPub = (msg) => {
      if (msg.header.msg_type === 'stream') printed += msg.content.text;
      if (msg.header.msg_type === 'error') printed += `${msg.content.ename}: ${msg.content.evalue}`;
    };
    await future.done;
    return printed;
  }
  return 'no notebook open on ' + path;
}"""


def _kernel_counts(page) -> tuple[int, int]:
    """(view.frames, second_view.frames) as the kernel holds them: what the views reported."""
    code = "print(view.frames, second_view.frames)"
    printed = page.evaluate(_JS_EXECUTE, {"path": NOTEBOOK, "code": code})
    match = re.fullmatch(r"(\d+) (\d+)\s*", printed)
    assert match, printed
    return int(match.group(1)), int(match.group(2))


def _line_frames(page) -> int:
    """The frame count in the lesson's "the view reports" line (the kernel rewrites it on each
    report it handles)."""
    text = page.locator(".jp-OutputArea-output", has_text="the view reports:").first.inner_text()
    match = re.search(r"the view reports: (\d+) frames", text)
    assert match, text
    return int(match.group(1))


def _captions(page) -> list[str]:
    """What each view's caption says (its own socket's tick and fps): proof that the views
    are alive, whatever the kernel heard."""
    return page.locator(".workshop-ball-caption").all_inner_texts()


def test_02_views_keep_reporting_after_a_batch_of_cells(lab_page, lab: JupyterLab) -> None:
    """The cells above section 6 run as one batch (both views open, async cells among them);
    afterwards the kernel's view.frames and second_view.frames, and the lesson's "the view
    reports" line, keep growing between two later executions."""
    page = lab_page
    open_notebook(page, lab, NOTEBOOK)
    run_cells_above(page, STOP_AT)
    assert error_outputs(page) == []
    canvases = page.locator(".workshop-ball-canvas")
    canvases.nth(1).wait_for(timeout=WIDGET_TIMEOUT)
    assert canvases.count() == 2

    first = _kernel_counts(page)
    line_first = _line_frames(page)
    deadline = time.monotonic() + GROWTH_TIMEOUT
    while True:
        later = _kernel_counts(page)
        if all(b >= a + GROWTH for a, b in zip(first, later, strict=True)):
            break
        if time.monotonic() > deadline:
            screenshot(page, "jupyterlab-02-views-stopped-reporting")
            raise AssertionError(
                f"the kernel's frame counts went from {first} to {later} in "
                f"{GROWTH_TIMEOUT:.0f} s (view, second_view) while the views showed "
                f"{_captions(page)}: their reports stopped reaching the kernel"
            )
        page.wait_for_timeout(250)
    # What the learner reads: the line the kernel rewrites on each report grows too.
    page.wait_for_function(
        """(before) => {
          const match = /the view reports: (\\d+) frames/.exec(document.body.innerText);
          return match && Number(match[1]) > before;
        }""",
        arg=line_first,
        timeout=WIDGET_TIMEOUT,
    )
    assert _line_frames(page) > line_first
    line = page.locator(".jp-OutputArea-output", has_text="the view reports:").first
    screenshot(page, "jupyterlab-02-view-reports-after-batch", line)
    assert page.page_errors == []
