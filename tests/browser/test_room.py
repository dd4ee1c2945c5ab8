"""The browser client's room page (``/#room``), in real Chromium against a real server.

The page polls ``GET api/stats`` once a second. Python clients connect, post and leave,
and the tests read what the page *shows*: each number's text, and its raw value in
``data-value`` (``#room-chat-rate``, ``[data-testid="room-clients-chat"]``, ...).

Tests ask for ``server`` before ``page`` so that the page's screenshot is taken while the
server still runs.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.conftest import ARTIFACTS
from tests.helpers import wait_until
from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient
from workshop_lib.echo.server import echo

pytestmark = pytest.mark.browser

UNREACHABLE = re.compile(r"^server unreachable — retrying")


def open_room(page: Page, server: WorkshopServer) -> None:
    """Open the room page and wait until it has shown two samples (so rates exist)."""
    page.goto(server.http_url + "/#room")
    expect(page.locator("#room-status")).to_have_attribute("data-state", "open")
    expect(page.locator("#room-ball-rate")).to_have_attribute("data-value", re.compile(r"\d"))


def clients(page: Page, lesson: str):
    """The number of clients the page shows for a lesson ("echo", "ball", "chat", "path-/x")."""
    return page.locator(f'[data-testid="room-clients-{lesson}"]')


def value(page: Page, name: str) -> float:
    """The raw value behind one of the page's numbers, e.g. ``chat-rate``."""
    return float(page.locator(f"#room-{name}").get_attribute("data-value"))


def ball_watcher(server: WorkshopServer):
    """A client on /ball that never reads: its frames pile up in memory (max_queue=None)
    instead of stalling the connection, so closing it is quick and skips no frames."""
    return connect(server.links.ws("/ball"), max_queue=None)


def test_client_counts_follow_connections(server: WorkshopServer, page: Page) -> None:
    server.app.route("/shout", echo)  # a learner's exercise: shown under its own path
    open_room(page, server)
    for lesson in ("echo", "ball", "chat"):
        expect(clients(page, lesson)).to_have_text("0")  # the page itself opens no socket
    expect(clients(page, "path-/shout")).to_have_count(0)
    expect(page.locator("#room-connections")).to_have_text("0")

    with (
        ball_watcher(server) as ball,
        ChatClient(server.links.ws("/chat"), "ada"),
        connect(server.links.ws("/chat")),  # connected, not joined: a client, not a member
        connect(server.links.ws("/echo")),
        connect(server.links.ws("/")),  # the echo's other address
        connect(server.links.ws("/shout")),
    ):
        expect(clients(page, "ball")).to_have_text("1")
        expect(clients(page, "chat")).to_have_text("2")
        expect(page.locator("#room-chat-members")).to_have_text("1")
        expect(clients(page, "echo")).to_have_text("2")
        expect(clients(page, "path-/shout")).to_have_text("1")
        expect(page.locator("#room-clients dt")).to_have_text(
            ["Echo", "Bouncing ball", "Chat", "/shout"]
        )
        expect(page.locator("#room-connections")).to_have_text("6")

        ball.close()
        expect(clients(page, "ball")).to_have_text("0")
        expect(clients(page, "chat")).to_have_text("2")

    for lesson in ("echo", "ball", "chat"):
        expect(clients(page, lesson)).to_have_text("0")
    expect(clients(page, "path-/shout")).to_have_count(0)  # only paths with clients now
    expect(page.locator("#room-chat-members")).to_have_text("0")
    expect(page.locator("#room-connections")).to_have_text("6")  # since the start: stays
    assert page.page_errors == []


def test_message_rate_follows_a_poster(server: WorkshopServer, page: Page) -> None:
    open_room(page, server)
    expect(page.locator("#room-chat-rate")).to_have_text("0.0")

    stop = threading.Event()
    with (
        ChatClient(server.links.ws("/chat"), "ada") as ada,
        ball_watcher(server),  # so the screenshot shows a ball client too
    ):
        posted: list[str] = []

        def post() -> None:
            # 3 a second: under the chat's limit of 5 a second (after a burst of 10).
            while not stop.wait(1 / 3):
                posted.append(f"message {len(posted) + 1}")
                ada.send(posted[-1])

        poster = threading.Thread(target=post, daemon=True)
        poster.start()
        try:
            page.wait_for_function(
                "Number(document.getElementById('room-chat-rate').dataset.value) > 0"
            )
            # Once the page's 10-second window holds only samples taken while posting, its
            # average is the poster's rate (a busy machine may take longer to get there).
            page.wait_for_function(
                "(() => { const v = Number(document.getElementById('room-chat-rate')"
                ".dataset.value); return v >= 2.4 && v <= 3.4; })()",
                timeout=40_000,
            )
            rate = value(page, "chat-rate")
            assert 2.4 <= rate <= 3.4, rate
            assert page.locator("#room-chat-rate").text_content() == f"{rate:.1f}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "room-page.png"), full_page=True)
        finally:
            stop.set()
            poster.join(timeout=5)
        assert ada.errors == [], ada.errors  # no rate-limit error: the numbers are real
        # The last one sent may still be on its way: the count is final once ada hears it.
        assert wait_until(lambda: ada.messages and ada.messages[-1]["text"] == posted[-1])
        sent = server.lesson("chat").room.history[-1]["id"]
        expect(page.locator("#room-chat-messages")).to_have_text(str(sent))
    assert page.page_errors == []


def test_ball_ticks_about_60_a_second(server: WorkshopServer, page: Page) -> None:
    open_room(page, server)
    page.wait_for_timeout(3000)  # a few samples: a steadier average
    rate = value(page, "ball-rate")
    assert 50 <= rate <= 70, rate
    assert re.fullmatch(r"\d+", page.locator("#room-ball-rate").text_content())
    expect(page.locator("#room-ball-skipped")).to_have_text(
        str(server.lesson("ball").frames_skipped)
    )
    assert page.page_errors == []


def test_server_stop_shows_unreachable_and_it_recovers(server: WorkshopServer, page: Page) -> None:
    polls: list[float] = []
    page.on("request", lambda r: polls.append(time.monotonic()) if "api/stats" in r.url else None)
    open_room(page, server)
    port, name = server.port, server.name

    server.stop()
    status = page.locator("#room-status")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_text(UNREACHABLE)
    expect(status).to_have_attribute("data-problem", "")
    expect(page.locator("#room-grid")).to_have_attribute("data-stale", "")
    # It keeps asking, once a second.
    stopped_polls = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) >= stopped_polls + 2, "the page stopped polling"
    expect(status).to_have_text(UNREACHABLE)

    restarted = start_server(port=port, name=name)
    try:
        expect(status).to_have_attribute("data-state", "open", timeout=10_000)
        expect(page.locator("#room-grid")).not_to_have_attribute("data-stale", "")
        # The new server's tick starts at 0 again: the rate starts afresh from its samples,
        # never negative from mixing in the old server's.
        page.wait_for_timeout(2500)
        assert 40 <= value(page, "ball-rate") <= 80
    finally:
        restarted.stop()
    assert page.page_errors == []


def test_leaving_the_page_stops_polling(server: WorkshopServer, page: Page) -> None:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "api/stats" in r.url else None)
    open_room(page, server)
    expect(page.locator(".site-nav a[href='#room']")).to_have_attribute("aria-current", "page")
    assert polls and all(url == server.http_url + "/api/stats" for url in polls)

    page.locator('.site-nav a[href="#echo"]').click()
    expect(page.locator("#echo-connect")).to_be_visible()
    page.wait_for_timeout(100)  # deliver the events of requests made before leaving
    polled = len(polls)
    page.wait_for_timeout(2000)
    assert len(polls) == polled, "polling went on after leaving the page"
    assert page.page_errors == []
