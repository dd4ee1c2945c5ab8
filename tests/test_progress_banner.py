"""The instructor's announcement in the course's widgets: on top of each, live, as text, and
nowhere when the notebook reports to no room."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.progress_room import announce
from tests.test_progress import TOKEN, progress_server
from workshop_lib import WorkshopServer, start_server
from workshop_lib.ball import BallControls
from workshop_lib.chat import ChatWidget
from workshop_lib.echo import EchoPanel
from workshop_lib.progress import banner, reporter
from workshop_lib.realtime import EventLog
from workshop_lib.realtime.voice_widget import VoiceWidget


@pytest.fixture
def fresh(monkeypatch) -> Iterator[None]:
    """No reporter and no banner from an earlier test (each kernel has one of each)."""
    monkeypatch.setattr(reporter, "_current", None)
    monkeypatch.setattr(reporter, "_listeners", [])
    monkeypatch.setattr(banner, "_banner", None)
    monkeypatch.setattr(banner, "_listening", False)
    monkeypatch.setattr(banner, "_followers", type(banner._followers)())
    yield
    if reporter._current is not None:
        reporter._current.stop()


@pytest.fixture
def joined(fresh, monkeypatch) -> Iterator[WorkshopServer]:
    """A room's server, and this process joined to it as a learner's kernel is."""
    with progress_server() as room:
        monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
        monkeypatch.setenv("WORKSHOP_TOKEN", TOKEN)
        monkeypatch.setenv("WORKSHOP_NAME", "ada")
        monkeypatch.delenv("WORKSHOP_PROGRESS", raising=False)
        yield room


def course_widgets(server: WorkshopServer) -> list:
    """One of each box widget the lessons show (their clients on a plain server)."""
    return [
        EchoPanel(server.links.ws("/echo")),
        BallControls(server.links.ws("/ball"), token=server.token),
        ChatWidget(server.links.ws("/chat"), "ada", token=server.token),
        EventLog(),
    ]


def test_each_widget_shows_the_announcement_live_and_as_text(joined):
    with start_server(port=0, name="banner-lessons") as lessons:
        shown = course_widgets(lessons)
        voice = VoiceWidget(lessons)
        try:
            line = banner.banner()
            assert line is not None
            assert all(widget.children[0] is line for widget in shown)
            wait_for(reporter._current.connected.is_set, timeout=10)
            assert line.layout.display == "none" and line.value == ""  # nothing said yet

            announce(joined.links.ws("/progress/watch"), "break until 11:00 <b>sharp</b>")
            wait_for(lambda: "break until 11:00" in line.value, timeout=10)
            assert line.layout.display is None
            assert "From your instructor: break until 11:00 &lt;b&gt;sharp&lt;/b&gt;" in line.value
            wait_for(lambda: voice.announcement == "break until 11:00 <b>sharp</b>", timeout=5)

            announce(joined.links.ws("/progress/watch"), "")  # taken down
            wait_for(lambda: line.layout.display == "none", timeout=10)
            assert line.value == "" and voice.announcement == ""
        finally:
            for widget in (*shown, voice):
                widget.close()


def test_a_widget_made_after_the_announcement_shows_it_at_once(joined):
    first = reporter.current()
    wait_for(first.connected.is_set, timeout=10)
    announce(joined.links.ws("/progress/watch"), "move on to §6")
    wait_for(lambda: first.announcement == "move on to §6", timeout=10)
    log = EventLog()
    try:
        assert "From your instructor: move on to §6" in log.children[0].value
    finally:
        log.close()


def test_a_notebook_in_no_room_gets_no_banner(fresh, monkeypatch):
    monkeypatch.delenv("WORKSHOP_SERVER", raising=False)
    assert banner.banner() is None
    log = EventLog()
    try:
        assert all("workshop-announcement" not in child._dom_classes for child in log.children)
        assert len(log.children) == 2  # the answers and the events, nothing else
    finally:
        log.close()


def test_reporting_turned_off_shows_no_banner_either(joined, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PROGRESS", "off")
    assert banner.banner() is None
