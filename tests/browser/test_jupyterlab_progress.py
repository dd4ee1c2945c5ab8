"""An announcement from the instructor's room reaches a notebook in a real JupyterLab: the
learner's next check prints it, under the check's own answer, once."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    error_outputs,
    kernel_with_env,
    open_notebook,
    printed_text,
    run_cell,
    screenshot,
)
from tests.helpers import wait_for
from tests.progress_room import KEY, TOKEN, Room

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

NOTEBOOK = "01-echo.ipynb"


def test_an_announcement_reaches_a_notebook_in_jupyterlab(lab_page, lab):
    room = Room().start()
    try:
        kernel_with_env(
            lab,
            NOTEBOOK,
            {"WORKSHOP_SERVER": room.url, "WORKSHOP_TOKEN": TOKEN, "WORKSHOP_NAME": "lena"},
        )
        open_notebook(lab_page, lab, NOTEBOOK)
        # 01's exercise cell: the import connects (lena is online), and its check (a ____
        # still in it: "Not yet") has no announcement to print yet.
        run_cell(lab_page, "q1.check(shout)")
        wait_for(lambda: room.row("lena").get("online"), timeout=30)
        assert "From your instructor" not in printed_text(lab_page)
        with connect(
            f"ws://127.0.0.1:{room.port}/progress/watch",
            additional_headers={"Authorization": f"Bearer {KEY}"},
        ) as watch:
            watch.recv(5)
            watch.send(json.dumps({"type": "progress.announce", "text": "move on to §6"}))
            while json.loads(watch.recv(5))["type"] != "progress.announcement":
                pass
        run_cell(lab_page, "q1.check(shout)")  # the same cell again: "Not yet", and the line
        assert "From your instructor: move on to §6" in printed_text(lab_page)
        screenshot(lab_page, "jupyterlab-announcement")
        run_cell(lab_page, "q1.check(shout)")  # again: the line was said once
        assert "From your instructor" not in printed_text(lab_page)
        assert error_outputs(lab_page) == []
        # The check reached the room too (a placeholder is a failed check).
        wait_for(lambda: room.row("lena")["exercises"]["01.q1"]["attempts"] == 3, timeout=10)
    finally:
        room.stop()
