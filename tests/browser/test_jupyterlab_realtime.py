"""Notebook 05 in a real JupyterLab in Chromium: every cell runs (Run All), and the event-log
widget renders and fills as the stream arrives. The notebook's one execution in the suite.
"""

from __future__ import annotations

import pytest

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    open_notebook,
    printed_text,
    run_cells_above,
    run_cells_from,
    screenshot,
)

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

WIDGET_TIMEOUT = 30_000
FIRST_ANSWER = "You said “Hello, Realtime API”: 3 words."


def test_05_realtime_api(lab_page, lab: JupyterLab) -> None:
    """05 runs clean; its event log shows the stream grouped, with the answer assembled."""
    page = lab_page
    open_notebook(page, lab, "05-realtime-api.ipynb")
    # Up to the cell after the first event log: read the widget while it is on screen.
    run_cells_above(page, "kinds = [event")
    assert error_outputs(page) == []
    log = page.locator(".realtime-events").first
    log.wait_for(timeout=WIDGET_TIMEOUT)
    log.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-05-event-log", log)
    answers = log.locator(".realtime-answers")
    assert FIRST_ANSWER in answers.inner_text()
    assert "completed" in answers.inner_text()
    lines = log.locator(".realtime-event-log [data-type]")
    types = lines.evaluate_all("rows => rows.map(row => row.dataset.type)")
    # Sent (text asked for first: the service answers in audio by default), then received.
    assert types[:3] == ["session.update", "conversation.item.create", "response.create"]
    assert "session.updated" in types
    assert types.count("response.output_text.delta") == 7
    assert types[-1] == "response.done"  # the cell stops there; rate_limits.updated follows
    # Grouped: a delta sits under its response (indented twice), an item event once.
    delta = lines.filter(has_text="response.output_text.delta").first
    added = lines.filter(has_text="conversation.item.added").first
    assert delta.evaluate("e => e.style.paddingLeft") == "3em"
    assert added.evaluate("e => e.style.paddingLeft") == "1.5em"

    run_cells_from(page, "kinds = [event")
    assert error_outputs(page) == []
    text = printed_text(page)
    for expected in (
        "response.output_text.delta events: 0",  # the answer before asking for text: audio
        "the transcript beside the audio: " + FIRST_ANSWER,
        "1.33x",  # base64's price, printed by the audio cell
        "0.50 s of audio, 24000 bytes",
        "deployment my-deployment",
        "cancelled",
        "refused: 401",
        "a new, empty session",
        "'PLUG! '",
    ):
        assert expected in text, expected
    assert page.page_errors == []
