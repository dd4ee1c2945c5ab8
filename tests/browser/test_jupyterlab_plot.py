"""Lesson 02's comparison plot as a learner meets it: the cell run by itself, again and again,
in JupyterLab in Chromium, while both ball views are open and report to the kernel.

JupyterLab sends widgets' comm messages on a kernel subshell, handled on a thread of its own
beside the running cell, and handling each fires IPython's post_execute, where pyplot redraws
every figure it tracks, racing the cell that draws the same figure. The views' reports come as
custom messages now (test_jupyterlab_views.py), but a learner's slider or text box still comes
the other way; the plot is a matplotlib Figure, which pyplot does not track. Cells run one at a
time, as a learner runs them; the test checks that the views keep reporting meanwhile.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    ink,
    open_notebook,
    output_images,
    run_cell,
    run_cells_above_one_by_one,
    screenshot,
)

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

NOTEBOOK = "02-bouncing-ball.ipynb"
PLOT = "KiB/s, client to server"  # text only the comparison plot's cell contains
RUNS = 12
WIDGET_TIMEOUT = 30_000  # ms


def _reported_frames(page) -> int:
    """The frame count in the lesson's "the view reports" line, which the kernel rewrites on
    each report it handles."""
    text = page.locator(".jp-OutputArea-output", has_text="the view reports:").first.inner_text()
    match = re.search(r"the view reports: (\d+) frames", text)
    assert match, text
    return int(match.group(1))


def test_02_plot_is_drawn_each_time_its_cell_runs_with_the_views_reporting(
    lab_page, lab: JupyterLab
) -> None:
    """Every cell above the plot runs, one at a time (both views open), then the plot's cell
    alone, 12 times: each run shows one PNG with ink in every part of each of its 3 panels,
    and the views reported to the kernel all along."""
    page = lab_page
    open_notebook(page, lab, NOTEBOOK)
    run_cells_above_one_by_one(page, PLOT)
    assert error_outputs(page) == []
    page.locator(".workshop-ball-canvas").nth(1).wait_for(timeout=WIDGET_TIMEOUT)
    assert page.locator(".workshop-ball-canvas").count() == 2
    page.wait_for_function(
        "() => /the view reports: [1-9]/.test(document.body.innerText)", timeout=WIDGET_TIMEOUT
    )
    frames_before = _reported_frames(page)

    failures = []
    for run in range(RUNS):
        index = run_cell(page, PLOT, timeout=60_000)
        errors = error_outputs(page)
        pngs = [png for cell, png in output_images(page) if cell == index]
        if errors or len(pngs) != 1:
            failures.append(f"run {run}: {len(pngs)} images, errors {errors}")
            continue
        # Three panels side by side: each has ink in its upper half (bars, numbers) and
        # its lower half (the methods' names); a blank or half-drawn figure has parts with none.
        parts = ink(pngs[0], columns=3, rows=2)
        if min(parts) <= 0.005:
            failures.append(f"run {run}: ink per part {[round(x, 3) for x in parts]}")
            jupyterlab.ARTIFACTS.mkdir(exist_ok=True)
            (jupyterlab.ARTIFACTS / f"jupyterlab-02-plot-run-{run}.png").write_bytes(pngs[0])
    plot = page.locator(".jp-RenderedImage img").last
    plot.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-02-plot-alone", plot)

    # The views kept reporting while the plot was drawn, or this proved nothing.
    assert _reported_frames(page) > frames_before
    assert failures == [], f"{len(failures)} of {RUNS} runs not drawn:\n" + "\n".join(failures)
    assert page.page_errors == []
