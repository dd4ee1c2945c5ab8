"""The notebooks in a real JupyterLab in Chromium: cells run, widgets render and answer.

Each lesson notebook runs once, as a learner's Run All does (Lab queues every cell at once),
and the same run is watched and read: outputs, widgets, keys pressed in them, the canvas's
pixels and the plots' pixels. 01 and 03 stop before their clean-up cell to type into their
widgets, then run it; 03 runs as in a class, with its kernel pointed at a room's server.
nbval runs the notebooks without a front end; only these tests prove that the ipywidgets
displays render in JupyterLab and that clicks in them reach the kernel and come back.
"""

from __future__ import annotations

import re
import time
import uuid
import warnings
from pathlib import Path

import nbformat
import pytest

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    cell_durations,
    error_outputs,
    ink,
    kernel_with_env,
    open_notebook,
    output_images,
    painted_image,
    printed_text,
    run_all_cells,
    run_cells_above,
    run_cells_from,
    screenshot,
    start_run_above,
    wait_for_run,
)
from tests.conftest import ROOM_TOKEN

# The harness's fixtures, bound here so pytest finds them (no conftest or pytest_plugins).
lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

# Tests take (lab_page, lab) in that order: the browser fixture comes first, so a machine
# without Chromium skips before a JupyterLab server is started for nothing.

WIDGET_TIMEOUT = 30_000  # ms for a widget to render or a message to come back


def write_notebook(path: Path, *sources: str) -> str:
    """Write a notebook with one code cell per source; returns its file name."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path.name


def test_harness_renders_a_widget(lab_page, lab: JupyterLab) -> None:
    """Self-test: the widget front end renders, and a click round-trips to the kernel."""
    page = lab_page
    name = write_notebook(
        lab.root_dir / f"_harness-widget-{uuid.uuid4().hex[:6]}.ipynb",
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=7, description='harness')\n"
        "label = widgets.Label('not clicked')\n"
        "label.add_class('harness-label')\n"
        "button = widgets.Button(description='Click me')\n"
        "button.add_class('harness-button')\n"
        "# The kernel answers the click: the label shows the slider's value.\n"
        "button.on_click(lambda _: setattr(label, 'value', f'clicked {slider.value}'))\n"
        "widgets.VBox([slider, button, label])",
    )
    open_notebook(page, lab, name)
    run_all_cells(page)
    assert error_outputs(page) == []
    # A rendered slider, not the text fallback a front end without the widget manager shows.
    page.locator(".jp-OutputArea-output .jupyter-widgets.widget-slider").wait_for(
        timeout=WIDGET_TIMEOUT
    )
    outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output").all_inner_texts()
    assert not any("IntSlider(" in text for text in outputs), outputs
    label = page.locator(".harness-label")
    assert label.inner_text().strip() == "not clicked"
    page.locator("button.harness-button").click()
    label.get_by_text("clicked 7").wait_for(timeout=WIDGET_TIMEOUT)
    screenshot(page, "jupyterlab-harness-widget")
    assert page.page_errors == []  # uncaught script errors in JupyterLab or the widgets


def test_harness_reports_errors(lab_page, lab: JupyterLab) -> None:
    """Self-test: a raising cell fails run_all_cells; error_outputs finds all three kinds."""
    page = lab_page
    name = write_notebook(
        lab.root_dir / f"_harness-error-{uuid.uuid4().hex[:6]}.ipynb",
        "import sys\nprint('Traceback (most recent call last):\\n  fake', file=sys.stderr)",
        # An Output widget swallows the exception and shows its traceback inside itself.
        "import ipywidgets as widgets\n"
        "out = widgets.Output()\n"
        "display(out)\n"
        "with out:\n"
        "    raise ValueError('inside an Output widget')",
        "1 / 0",
        "print('not reached')",
    )
    open_notebook(page, lab, name)
    with pytest.raises(AssertionError, match="ZeroDivisionError") as failed:
        run_all_cells(page)
    # Lab stops at the error: the last cell never ran (and this was no timeout).
    assert "cells [3] did not run" in str(failed.value)
    page.locator(".jupyter-widgets .jp-OutputArea-output").wait_for(timeout=WIDGET_TIMEOUT)
    errors = error_outputs(page)
    assert len(errors) == 3, errors
    assert "fake" in errors[0]
    assert "ZeroDivisionError" in errors[1]
    assert "inside an Output widget" in errors[2]


def test_00_setup_check(lab_page, lab: JupyterLab) -> None:
    """00 runs clean, shows its table, and the front end marks widgets-frontend ok."""
    page = lab_page
    open_notebook(page, lab, "00-setup-check.ipynb")
    run_all_cells(page)
    assert error_outputs(page) == []
    table = page.locator("table.workshop-setup-check")
    table.wait_for(timeout=WIDGET_TIMEOUT)
    # The row turns ok only after JupyterLab rendered the report widget (view counting).
    frontend = table.locator('tr[data-check="widgets-frontend"]')
    try:
        table.locator('tr[data-check="widgets-frontend"][data-status="ok"]').wait_for(
            timeout=WIDGET_TIMEOUT
        )
    finally:
        table.scroll_into_view_if_needed()
        screenshot(page, "jupyterlab-00-setup-check")
    rows = table.locator("tr[data-check]")
    statuses = {
        rows.nth(i).get_attribute("data-check"): rows.nth(i).get_attribute("data-status")
        for i in range(rows.count())
    }
    # Reported, not asserted: port-8765 may be taken on this machine, for instance. The
    # warning shows in pytest's summary; the full list with -rP or -s.
    print("\n00-setup-check rows:", ", ".join(f"{k}={v}" for k, v in statuses.items()))
    not_ok = {k: v for k, v in statuses.items() if v != "ok" and k != "widgets-frontend"}
    if not_ok:
        warnings.warn(f"00-setup-check in JupyterLab, rows not ok: {not_ok}", stacklevel=1)
    assert frontend.get_attribute("data-status") == "ok"
    assert len(statuses) > 1, statuses

    # The name a room will call this learner: typed and saved in the notebook's box.
    box = page.locator(".workshop-name-input input")
    box.fill("ada lovelace")
    page.locator("button.workshop-name-save").click()
    status = page.locator(".workshop-name-status")
    status.filter(has_text="your widgets join as ada lovelace").wait_for(timeout=WIDGET_TIMEOUT)
    status.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-00-name-box", page.locator(".workshop-name-status").locator(".."))
    assert page.page_errors == []


def _report_durations(page, notebook: str, ran_for: float) -> None:
    slow = [f"[{i}] {s:.1f}s {first[:40]}" for i, first, s in cell_durations(page) if s >= 1]
    print(f"\n{notebook} in JupyterLab: {ran_for:.0f}s; slow cells:")
    print("\n".join(slow))


def test_01_echo(lab_page, lab: JupyterLab) -> None:
    """01 runs clean; Enter and Send in its echo panel get the message back, in columns
    that do not run together; the handshake, asyncio.run and 1011 cells say what they show."""
    page = lab_page
    open_notebook(page, lab, "01-echo.ipynb")
    # The clean-up cell closes the panel and stops the server: use the panel before it,
    # as a learner does, then run the rest.
    cleanup = "echo_panel.close()"
    started = time.monotonic()
    run_cells_above(page, cleanup)
    assert error_outputs(page) == []
    panel = page.locator(".workshop-echo-panel")
    panel.wait_for(timeout=WIDGET_TIMEOUT)
    text_box = panel.locator(".workshop-echo-input input")
    log = panel.locator(".workshop-echo-log")
    typed = f"sent with Enter {uuid.uuid4().hex[:8]}"
    text_box.fill(typed)
    text_box.press("Enter")  # as on the browser page: no need to reach for the button
    log.locator('tr[data-direction="received"]', has_text=typed).wait_for(timeout=WIDGET_TIMEOUT)
    clicked = f"sent with Send {uuid.uuid4().hex[:8]}"
    text_box.fill(clicked)
    panel.locator(".workshop-echo-send").click()
    log.locator('tr[data-direction="received"]', has_text=clicked).wait_for(timeout=WIDGET_TIMEOUT)
    assert log.locator('tr[data-direction="sent"]', has_text=typed).count() == 1
    assert text_box.input_value() == ""
    # The columns have room between them (a bare table ran them together).
    gap = log.locator("td").first.evaluate("(td) => parseFloat(getComputedStyle(td).paddingRight)")
    assert gap >= 8, gap
    panel.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-01-echo-panel", panel)
    # Under the hood: the frame tables, the last one read from the server's own bytes.
    tables = page.locator("table.workshop-frames")
    assert tables.count() == 3
    assert tables.nth(1).locator("td", has_text="key ").count() == 4  # a client masks
    fragments = tables.nth(2).locator("tr[data-opcode]")
    opcodes = [fragments.nth(i).get_attribute("data-opcode") for i in range(fragments.count())]
    assert opcodes == ["TEXT", "CONT", "CONT", "CONT", "CLOSE"], opcodes
    tables.nth(2).scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-01-frames", tables.nth(2))
    run_cells_from(page, cleanup)
    assert error_outputs(page) == []
    text = printed_text(page)
    for expected in (
        "HTTP/1.1 101 Switching Protocols",
        "RuntimeError: asyncio.run() cannot be called from a running event loop",
        "closed by the server: code 1011",
    ):
        assert expected in text, f"{expected!r} not in the outputs"
    _report_durations(page, "01", time.monotonic() - started)
    assert page.page_errors == []


# The view's caption, as ball_view.js writes it twice a second.
BALL_CAPTION = re.compile(r"tick (\d+) · (\d+) fps · delay (-|[\d.]+) ms")


def _assert_drawn(png: bytes, what: str) -> None:
    """Ink in every part of the frame: a blank or half-drawn plot has parts with none."""
    shares = ink(png, columns=3, rows=2)
    assert min(shares) > 0.005, f"{what}: ink per part {[round(x, 3) for x in shares]}"


def test_02_bouncing_ball(lab_page, lab: JupyterLab) -> None:
    """02 runs clean, watched while it runs: its canvas animates (ticks advance, pixels
    change, 30+ frames a second), the controls render and follow what a cell sets, and
    both plots are drawn, in the kernel's PNG and on the screen, with the views open (the
    second: WebSocket, SSE, long polling and polling, measured at once); then the clean-up
    cell closes the views."""
    page = lab_page
    name = "02-bouncing-ball.ipynb"
    open_notebook(page, lab, name)
    started = time.monotonic()
    # Every cell but the clean-up, as one batch (~50 s: the notebook measures for a while),
    # so that the plots are looked at while both views are still open.
    cleanup = "view.close()"
    start_run_above(page, cleanup)

    canvases = page.locator(".workshop-ball-canvas")
    canvases.nth(1).wait_for(timeout=60_000)
    assert canvases.count() == 2  # `view`, and `second_view` next to the controls
    canvas = canvases.first  # `view`, BallView's default size
    assert canvas.get_attribute("width") == "320"
    # data-tick is the tick last painted, and a view paints only while it is on screen.
    canvas.scroll_into_view_if_needed()
    page.wait_for_function(
        "(c) => c.dataset.tick !== undefined", arg=canvas.element_handle(), timeout=WIDGET_TIMEOUT
    )
    first_tick = int(canvas.get_attribute("data-tick"))
    page.wait_for_timeout(1000)
    canvas.scroll_into_view_if_needed()
    assert int(canvas.get_attribute("data-tick")) > first_tick
    before = screenshot(page, "jupyterlab-02-ball-canvas", canvas).read_bytes()
    page.wait_for_timeout(300)
    changed = canvas.screenshot() != before  # a bool: no PNG bytes in a failure message
    assert changed, "the canvas did not change in 300 ms (is the ball paused?)"
    # Frames arrive at 30+ per second (60 expected; the caption counts the last second).
    caption = page.locator(".workshop-ball-view").first.locator(".workshop-ball-caption")
    deadline = time.monotonic() + 10
    while True:
        text = caption.text_content() or ""
        match = BALL_CAPTION.search(text)
        if (match and int(match.group(2)) >= 30) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
    assert match and int(match.group(2)) >= 30, f"caption: {text!r}"
    # One line, whatever the numbers: a caption that wrapped moved everything below it.
    heights = {caption.evaluate("(c) => c.getBoundingClientRect().height") for _ in range(5)}
    assert len(heights) == 1, heights

    # The controls: rendered ipywidgets, and they show the server's state: a cell steers
    # the ball to #1f77b4 and radius 0.08, and the colour picker follows.
    controls = page.locator(".workshop-ball-controls")
    controls.wait_for(timeout=WIDGET_TIMEOUT)
    sliders = controls.locator(".widget-slider")
    labels = [t.strip() for t in sliders.locator(".widget-label").all_text_contents()]
    assert labels == ["speed", "radius"]
    assert controls.locator("button", has_text="kick").count() == 1
    page.wait_for_function(
        "(el) => el.value === '#1f77b4'",
        arg=controls.locator(".widget-colorpicker input[type=color]").element_handle(),
        timeout=60_000,
    )
    controls.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-02-ball-controls")

    wait_for_run(page, timeout=240_000)
    assert error_outputs(page) == []
    text = printed_text(page)
    assert "and the controls above show it: colour #1f77b4, radius 0.08" in text
    # Section 7: the SSE stream on the wire, a long poll and its 400, four methods measured.
    assert "Content-Type: text/event-stream" in text and "retry: 1000" in text
    assert "400 since must be a whole number" in text
    measured = re.findall(
        r"^\s*(WebSocket|SSE|long poll|poll every \d+ ms): +(\d+) updates", text, re.M
    )
    assert [m for m, _ in measured][:3] == ["WebSocket", "SSE", "long poll"], measured
    assert all(int(n) > 0 for _, n in measured) and len(measured) == 6, measured
    # The plots, drawn while both views are open and animating.
    assert page.locator(".workshop-ball-canvas").count() == 2
    images = page.locator(".jp-RenderedImage img")
    pngs = output_images(page)
    assert len(pngs) == images.count() >= 2
    for index, png in pngs:
        _assert_drawn(png, f"the PNG of cell {index}")
    for k in range(images.count()):
        _assert_drawn(painted_image(page, images.nth(k), f"jupyterlab-02-plot-{k}"), f"plot {k}")

    run_cells_from(page, cleanup)
    assert error_outputs(page) == []
    # view.close() and second_view.close() remove both canvases (their sockets close too).
    page.wait_for_function(
        "() => document.querySelectorAll('.workshop-ball-canvas').length === 0",
        timeout=WIDGET_TIMEOUT,
    )
    _report_durations(page, "02", time.monotonic() - started)
    assert page.page_errors == []


def _rows(log, text: str | re.Pattern[str]):
    """The chat widget's message rows whose text contains `text` ("12:00 ada: hi")."""
    return log.locator('li[data-kind="message"]', has_text=text)


def test_03_chat_room_in_a_class(lab_page, lab: JupyterLab, room) -> None:
    """03 as a class runs it, its kernel pointed at the room's server (WORKSHOP_SERVER,
    WORKSHOP_TOKEN, WORKSHOP_NAME): the widget joins the room under the learner's name and
    Enter sends there; the notebook's scripted people (linus, the bot, the talkers) and the
    deep links' tabs are on the learner's own server, where the bot answers a tab; the rude
    experiments stay on the private lab server; the clean-up leaves the room, which serves on."""
    page = lab_page
    name = "03-chat-room.ipynb"
    env = {"WORKSHOP_SERVER": room.http_url, "WORKSHOP_TOKEN": ROOM_TOKEN, "WORKSHOP_NAME": "grace"}
    kernel_with_env(lab, name, env)
    open_notebook(page, lab, name)
    cleanup = "bot.close()"
    started = time.monotonic()
    run_cells_above(page, cleanup)
    assert error_outputs(page) == []

    chat = page.locator(".workshop-chat")
    chat.wait_for(timeout=WIDGET_TIMEOUT)
    log = chat.locator(".workshop-chat-log")
    users = chat.locator(".workshop-chat-users li")
    users.filter(has_text=re.compile(r"^grace$")).wait_for(state="attached", timeout=WIDGET_TIMEOUT)
    assert not {"me", "linus", "bot"} & set(users.all_text_contents())

    text_box = chat.locator(".workshop-chat-input input")
    message = f"hello from the widget {uuid.uuid4().hex[:8]}"
    text_box.fill(message)
    text_box.press("Enter")
    _rows(log, re.compile(rf"\bgrace: {re.escape(message)}$")).wait_for(
        state="attached", timeout=WIDGET_TIMEOUT
    )
    assert text_box.input_value() == ""

    # A browser chat from the notebook's deep link (/?name=ada#chat) joins the learner's own
    # server at once, where linus and the bot are, and the bot answers it.
    link = page.locator('.jp-RenderedMarkdown a[href*="#chat"]').first
    href = link.get_attribute("href")
    assert href and "name=ada" in href and not href.startswith(room.http_url), href
    chat_page = page.context.new_page()
    chat_errors: list[str] = []
    chat_page.on("pageerror", lambda exc: chat_errors.append(str(exc)))
    chat_page.goto(href)
    chat_page.locator('#chat-status[data-state="joined"]').wait_for(timeout=WIDGET_TIMEOUT)
    chat_page.locator("#chat-messages li", has_text="hello from a Python client").wait_for(
        timeout=WIDGET_TIMEOUT
    )
    chat_page.locator("#chat-input").fill("!time")
    chat_page.locator("#chat-input").press("Enter")
    chat_page.locator(
        "#chat-messages li", has_text=re.compile(r"bot.*\d\d:\d\d:\d\d")
    ).first.wait_for(timeout=WIDGET_TIMEOUT)
    chat.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-03-chat-widget", chat)
    screenshot(chat_page, "jupyterlab-03-browser-chat")

    run_cells_from(page, cleanup)
    assert error_outputs(page) == []
    page.wait_for_function(
        "() => document.querySelectorAll('.workshop-chat').length === 0",
        timeout=WIDGET_TIMEOUT,
    )
    text = printed_text(page)
    assert "the server closed sleepy with: 1008" in text
    assert "what the room was told: {'type': 'chat.left', 'name': 'sleepy'" in text
    # The room heard the learner alone: no scripted person, no rude client, nobody as "me".
    posted = [m["from"] for m in room.lesson("chat").room.history]
    assert set(posted) == {"grace"}, posted
    assert room.app.served["/chat"] >= 1 and room.running  # it serves on after the clean-up
    chat_page.close()
    assert chat_errors == []
    _report_durations(page, "03", time.monotonic() - started)
    assert page.page_errors == []


def test_04_auth_and_errors(lab_page, lab: JupyterLab) -> None:
    """04 runs clean with Run All: every provoked error is answered as the lesson says,
    the clients come back after the restarts, and its chat link carries the token."""
    page = lab_page
    open_notebook(page, lab, "04-auth-and-errors.ipynb")
    started = time.monotonic()
    run_all_cells(page)
    assert error_outputs(page) == []
    text = printed_text(page)
    for expected in (
        "401 Unauthorized",
        '{"type":"auth.ok"}',
        'the server said: {"type":"error","code":"unauthorized"',  # in band, before the close
        "closed by the server: 4001 wrong token",
        "times as long",
        "https://evil.example: refused with 403",
        "closed: 1009",
        "closed with: 4029",
        "closed: 1001",
        "closed with 1011",
        "plain client: connected = False close code 1001",
        "ball: reconnected 1 time(s)",
        "chat: reconnected 1 time(s), asked for 'linus', back as 'linus'",
    ):
        assert expected in text, f"{expected!r} not in the outputs"
    # Minima: == is slower when more of the guess is right; compare_digest is not.
    ratios = [float(r) for r in re.findall(r"([\d.]+) times as long", text)]
    assert ratios[0] > 3 and ratios[1] < 2, ratios
    assert re.search(r"\?name=grace#chat&token=[\w-]{22}\)", text), "no chat link with a token"
    screenshot(page, "jupyterlab-04-auth-and-errors")
    _report_durations(page, "04", time.monotonic() - started)
    assert page.page_errors == []
