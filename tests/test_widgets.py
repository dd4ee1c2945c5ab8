"""The notebooks' widgets, kernel side: what they send, receive, log and show.

Whether JupyterLab renders them is proven in tests/test_jupyterlab.py, in Chromium.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from workshop_lib import start_server
from workshop_lib.echo.widgets import EchoPanel
from workshop_lib.notebook.logview import LogView


def test_echo_panel_sends_receives_and_times(server):
    panel = EchoPanel(server.links.ws("/echo"))
    try:
        assert "Nothing sent yet" in panel.log_html.value
        panel.text.value = "typed by a learner"
        panel.send_button.click()  # the same callback a click in JupyterLab runs
        sent, received = panel.entries
        assert (sent.direction, sent.text) == ("sent", "typed by a learner")
        assert (received.direction, received.text) == ("received", "typed by a learner")
        assert 0 < received.ms < 5000
        assert panel.text.value == ""  # ready for the next message
        assert panel.log_html.value.count('data-direction="received"') == 1
        assert f"{received.ms:.2f} ms" in panel.log_html.value
    finally:
        panel.close()


def test_echo_panel_shows_markup_as_text(server):
    panel = EchoPanel(server.links.ws("/echo"))
    try:
        panel.send('<img src=x onerror="alert(1)">')
        assert "<img" not in panel.log_html.value
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in panel.log_html.value
    finally:
        panel.close()


def test_echo_panel_explains_a_missing_server_then_reconnects():
    name = f"test-{uuid.uuid4().hex[:8]}"
    server = start_server(port=0, name=name)
    port = server.port
    panel = EchoPanel(server.links.ws("/echo"), timeout=2)
    try:
        assert panel.send("one").direction == "received"
        server.stop()
        failed = panel.send("two")
        assert failed.direction == "error"
        assert "no server" in failed.text or "closed" in failed.text
        server = start_server(port=port, name=name)
        assert panel.send("three").text == "three"  # reconnected by itself
        assert panel.send("").direction == "error"  # nothing to send
    finally:
        panel.close()
        server.stop()


def test_echo_panel_keeps_a_bounded_log(server):
    panel = EchoPanel(server.links.ws("/echo"), max_entries=6)
    try:
        for i in range(10):
            panel.send(f"m{i}")
        assert len(panel.entries) == 6
        assert panel.entries[-1].text == "m9"
    finally:
        panel.close()


def test_log_view_shows_history_and_lines_from_the_server_thread(server):
    view = LogView()
    try:
        assert any("listening on" in line for line in view.lines)  # logged before the view
        panel = EchoPanel(server.links.ws("/echo"))
        panel.send("x")
        panel.close()
        deadline = time.monotonic() + 5
        while not any("left /echo" in line for line in view.lines):
            assert time.monotonic() < deadline, list(view.lines)[-5:]
            time.sleep(0.02)
        assert "connected to /echo" in view.value
        logging.getLogger("workshop_lib.test").warning("<b>not markup</b>")
        assert "&lt;b&gt;not markup&lt;/b&gt;" in view.value
    finally:
        view.close()
    logging.getLogger("workshop_lib.test").warning("after close")
    assert "after close" not in view.value


def _press_enter(text_box) -> None:
    """What JupyterLab's text box sends the kernel when Enter is pressed in it."""
    text_box._handle_custom_msg({"event": "submit"}, [])


def test_enter_in_the_echo_panel_sends(server):
    panel = EchoPanel(server.links.ws("/echo"))
    try:
        panel.text.value = "sent with Enter"
        _press_enter(panel.text)
        assert [(e.direction, e.text) for e in panel.entries] == [
            ("sent", "sent with Enter"),
            ("received", "sent with Enter"),
        ]
        assert panel.text.value == ""
        # Its columns are padded apart, not run together.
        assert 'style="padding:' in panel.log_html.value
    finally:
        panel.close()


def test_enter_in_the_chat_widget_sends_and_the_newest_line_is_at_the_bottom(server):
    from workshop_lib.chat import ChatClient, ChatWidget

    url = server.links.ws("/chat")
    widget = ChatWidget(url, "me")
    with ChatClient(url, "ada") as ada:
        ada.send("first")
        deadline = time.monotonic() + 5
        while "first" not in widget.log_html.value:
            assert time.monotonic() < deadline, widget.log_html.value
            time.sleep(0.02)
        widget.text.value = "sent with Enter"
        _press_enter(widget.text)
        while not any(m["text"] == "sent with Enter" for m in ada.messages):
            assert time.monotonic() < deadline, ada.messages
            time.sleep(0.02)
    assert widget.text.value == ""
    while "sent with Enter" not in widget.log_html.value:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    html = widget.log_html.value
    widget.close()
    # Newest first in the markup of a column-reverse list: on screen, oldest at the top
    # and the newest line at the bottom, in view, as on the browser page.
    assert "column-reverse" in html
    assert html.index("sent with Enter") < html.index("first")
    # HH:MM, as the browser page, with the full time on hover; joins have a time too.
    assert re.search(r'<li data-kind="message"><time title="[\d-]+ [\d:]+" [^>]*>\d\d:\d\d<', html)
    assert re.search(r'<li data-kind="joined"><time [^>]*>\d\d:\d\d</time> <i>ada joined', html)
