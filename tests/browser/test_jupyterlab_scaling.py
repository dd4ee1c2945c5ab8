"""Notebook 06 in a real JupyterLab in Chromium, with Run All: two server processes that are
two rooms, then one room through a real redis-server, a process killed while people talk,
Redis killed and brought back, the measured table. The notebook's one execution in the suite.
"""

from __future__ import annotations

import pytest

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    html_outputs,
    open_notebook,
    printed_text,
    run_all_cells,
    screenshot,
)

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser


def test_06_scaling_out(lab_page, lab: JupyterLab, redis_url) -> None:
    """06 runs clean with Run All, and each section's output shows what its text says."""
    page = lab_page
    open_notebook(page, lab, "06-scaling-out.ipynb")
    run_all_cells(page)
    assert error_outputs(page) == []
    text = printed_text(page)
    for expected in (
        "ada sees: ['ada'] ['hello from process one']",  # two rooms without Redis
        "bob sees: ['bob'] ['hello from process two']",
        "['ada', 'bob', 'grace', 'linus']",  # presence: the union over both processes
        "one order for all four: True",
        "'xread': 2",  # one reader per process, with 34 people in the room
        "subscribers who heard it: 0",
        "the listener got: said while someone listened",
        "each message once, in order: True",
        "'while mover was away')",
        "resumed, not restarted",
        "talker was told: unavailable",
        "'status': 'degraded'",
        "'and we are back']",  # the history survived Redis's restart
    ):
        assert expected in text, f"{expected!r} not in the notebook's output:\n{text}"
    (table,) = [h for h in html_outputs(page) if "all, one order" in h]
    assert table.count("<tr>") == 4 and table.count("<td>yes</td>") == 3, table
    blanks = [h for h in html_outputs(page) if "replace every ____" in h]
    assert len(blanks) == 2  # the exercises, committed with their blanks
    screenshot(page, "jupyterlab-06-end")
    assert page.page_errors == []
