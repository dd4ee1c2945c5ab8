"""An announcement from the instructor's room reaches a notebook in a real JupyterLab: a
widget already on the page shows it on top, and the learner's next check prints it, under the
check's own answer, once."""

from __future__ import annotations

import pytest

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
from tests.progress_room import TOKEN, Room, announce

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

NOTEBOOK = "01-echo.ipynb"
WIDGET_TIMEOUT = 30_000


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
        run_cell(lab_page, "server = start_server()")
        run_cell(lab_page, "echo_panel = EchoPanel(")
        lab_page.locator(".workshop-echo-panel").wait_for(timeout=WIDGET_TIMEOUT)
        assert not lab_page.locator(".workshop-announcement").first.is_visible()  # none yet
        announce(f"ws://127.0.0.1:{room.port}/progress/watch", "move on to §6")
        # The echo panel shown before it came shows it now, on top, without a cell run.
        banner = lab_page.locator(".workshop-announcement")
        banner.filter(has_text="From your instructor: move on to §6").first.wait_for(
            timeout=WIDGET_TIMEOUT
        )
        screenshot(
            lab_page, "jupyterlab-announcement-banner", lab_page.locator(".workshop-echo-panel")
        )
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


def test_the_voice_widget_shows_the_announcement_above_its_card(lab_page, lab):
    """VoiceWidget draws its own front end (not a box of widgets): the announcement comes
    to it as a trait, and the card under it keeps working."""
    import nbformat

    room = Room().start()
    try:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [
            nbformat.v4.new_code_cell(
                "from workshop_lib import start_server\n"
                "from workshop_lib.realtime import VoiceWidget\n"
                "server = start_server(port=0)\n"
                "voice = VoiceWidget(server)\n"
                "voice"
            )
        ]
        name = "voice-announcement.ipynb"
        nbformat.write(notebook, lab.root_dir / name)
        kernel_with_env(
            lab,
            name,
            {"WORKSHOP_SERVER": room.url, "WORKSHOP_TOKEN": TOKEN, "WORKSHOP_NAME": "lena"},
        )
        open_notebook(lab_page, lab, name)
        run_cell(lab_page, "voice = VoiceWidget(server)")
        card = lab_page.locator(".voice")
        card.first.wait_for(timeout=WIDGET_TIMEOUT)
        line = lab_page.locator(".voice-announcement")
        assert line.count() == 1 and not line.is_visible()  # nothing said yet
        wait_for(lambda: room.row("lena").get("online"), timeout=30)
        announce(f"ws://127.0.0.1:{room.port}/progress/watch", "break <i>until</i> 11")
        line.and_(lab_page.locator(":visible")).wait_for(timeout=WIDGET_TIMEOUT)
        assert line.text_content() == "From your instructor: break <i>until</i> 11"  # as text
        # The widget's style sheet holds: the line is drawn as a banner, the empty transcript
        # says what comes there (a string broken over two lines drops the rules after it).
        assert line.evaluate("(e) => getComputedStyle(e).backgroundColor") == "rgb(255, 248, 197)"
        placeholder = lab_page.locator(".voice-transcript").evaluate(
            "(e) => getComputedStyle(e, '::before').content"
        )
        assert "What you say" in placeholder, placeholder
        screenshot(lab_page, "jupyterlab-voice-announcement", lab_page.locator(".jp-OutputArea"))
        assert error_outputs(lab_page) == []
        # The same cell again: a new widget shows the standing announcement at once.
        run_cell(lab_page, "voice = VoiceWidget(server)")
        line.and_(lab_page.locator(":visible")).wait_for(timeout=WIDGET_TIMEOUT)
    finally:
        room.stop()
