"""The browser client's ball page, driven in real Chromium pages against a real server.

Each canvas carries the state it last drew in ``data-*`` attributes (tick, x, y, vx, vy,
radius, color, paused, ts), and each number under it its raw value in ``data-value``, so
the tests read what the page *drew*, not what it might have meant to draw. A Python client
on ``/ball`` records the server's frames by tick to compare the pages against.

Tests ask for ``server`` before ``page`` so that the page's screenshot is taken while the
server still runs.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import wait_until
from workshop_lib import WorkshopServer

pytestmark = pytest.mark.browser


def open_ball(page: Page, server: WorkshopServer) -> None:
    page.goto(server.http_url + "/#ball")
    expect(page.locator("#ball-status")).to_have_attribute("data-state", "open")
    # The first frame arrives right after connecting and is drawn on the next repaint.
    expect(page.locator("#ball-push-canvas")).to_have_attribute("data-tick", re.compile(r"\d"))


def drawn(page: Page, side: str = "push") -> dict:
    """The state a canvas last drew, as numbers."""
    data = page.locator(f"#ball-{side}-canvas").evaluate("c => ({...c.dataset})")
    return {
        "tick": int(data["tick"]),
        **{key: float(data[key]) for key in ("x", "y", "vx", "vy", "radius", "ts")},
        "color": data["color"],
        "paused": data["paused"] == "true",
    }


def stat(page: Page, name: str) -> float:
    """The raw value behind one of the numbers under a canvas, e.g. ``push-count``."""
    return float(page.locator(f"#ball-{name}").get_attribute("data-value"))


@contextmanager
def second_page(browser, server: WorkshopServer) -> Iterator[Page]:
    """Another browser (its own context, as another person's would be) on the ball page."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        other = context.new_page()
        errors: list[str] = []
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        other.page_errors = errors
        open_ball(other, server)
        yield other
    finally:
        context.close()


@contextmanager
def recording(server: WorkshopServer) -> Iterator[dict[int, dict]]:
    """A Python client on /ball that keeps every frame it receives, by tick."""
    frames: dict[int, dict] = {}
    with connect(server.links.ws("/ball")) as ws:

        def receive() -> None:
            try:
                for message in ws:
                    event = json.loads(message)
                    if event["type"] == "ball.state":
                        frames[event["tick"]] = event
            except ConnectionClosed:
                pass

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        try:
            yield frames
        finally:
            ws.close()
            thread.join(timeout=5)


def test_two_pages_draw_the_servers_frames_and_share_a_pause(
    server: WorkshopServer, page: Page, browser
) -> None:
    with recording(server) as frames:
        open_ball(page, server)
        with second_page(browser, server) as other:
            # Both pages keep receiving frames, and both get past a tick the server reached.
            start_tick = server.lesson("ball").state.tick
            counts = [stat(p, "push-count") for p in (page, other)]
            assert wait_until(
                lambda: min(drawn(p)["tick"] for p in (page, other)) >= start_tick + 30
            )
            # The counters on the page are refreshed a few times a second: wait for them too.
            assert wait_until(
                lambda: all(
                    stat(p, "push-count") > c + 20
                    for p, c in zip((page, other), counts, strict=True)
                )
            )

            # What each page drew for a tick is exactly what the server sent for that tick.
            matched = 0
            for _ in range(8):
                for p in (page, other):
                    shown = drawn(p)
                    sent = frames.get(shown["tick"])
                    if sent is not None:
                        matched += 1
                        assert (shown["x"], shown["y"]) == (sent["x"], sent["y"])
                        assert shown["color"] == sent["color"]
                time.sleep(0.05)
            assert matched >= 10, f"only {matched} of 16 samples were found in the recording"

            # Page A pauses: page B's button and canvas show it, and both stand still at
            # the server's position.
            expect(page.locator("#ball-pause")).to_have_text("Pause")
            page.locator("#ball-pause").click()
            for p in (page, other):
                expect(p.locator("#ball-pause")).to_have_text("Resume")
                expect(p.locator("#ball-pause")).to_have_attribute("aria-pressed", "true")
                expect(p.locator("#ball-push-canvas")).to_have_attribute("data-paused", "true")
            assert server.lesson("ball").state.paused
            paused_tick = server.lesson("ball").state.tick
            # Frames keep coming while paused (the tick counts on), the position does not move.
            assert wait_until(lambda: drawn(other)["tick"] > paused_tick + 10)
            a, b = drawn(page), drawn(other)
            server_state = server.lesson("ball").state
            assert abs(a["x"] - b["x"]) < 1e-9 and abs(a["y"] - b["y"]) < 1e-9
            assert abs(a["x"] - server_state.x) < 1e-9 and abs(a["y"] - server_state.y) < 1e-9

            # Page B resumes it for everyone.
            other.locator("#ball-pause").click()
            expect(page.locator("#ball-pause")).to_have_text("Pause")
            assert wait_until(lambda: drawn(page)["x"] != a["x"])
            assert other.page_errors == []
    assert page.page_errors == []


def test_colour_and_radius_from_one_page_reach_the_other(
    server: WorkshopServer, page: Page, browser
) -> None:
    open_ball(page, server)
    with second_page(browser, server) as other:
        canvas_b = other.locator("#ball-push-canvas")
        expect(canvas_b).to_have_attribute("data-color", "#e4572e")

        page.locator("#ball-color").fill("#1f77b4")
        expect(canvas_b).to_have_attribute("data-color", "#1f77b4")
        expect(other.locator("#ball-color")).to_have_value("#1f77b4")  # B's picker follows
        assert server.lesson("ball").state.color == "#1f77b4"

        page.locator("#ball-radius").fill("0.12")
        expect(canvas_b).to_have_attribute("data-radius", "0.12")
        expect(other.locator("#ball-radius")).to_have_value("0.12")
        assert server.lesson("ball").state.radius == 0.12

        # Speed 0 from B stops the ball on A.
        other.locator("#ball-speed").fill("0")
        expect(page.locator("#ball-push-canvas")).to_have_attribute("data-vx", "0")
        expect(page.locator("#ball-push-canvas")).to_have_attribute("data-vy", "0")
        # The polled canvas gets there too, one poll later.
        expect(page.locator("#ball-poll-canvas")).to_have_attribute("data-color", "#1f77b4")
        assert other.page_errors == []
    assert page.page_errors == []


def test_polling_lags_behind_the_push(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    expect(page.locator("#ball-poll-interval")).to_have_value("250")
    page.locator("#ball-poll-interval").fill("500")
    page.wait_for_timeout(1200)  # let the rate over the last second settle to the new interval

    push0, poll0, t0 = stat(page, "push-count"), stat(page, "poll-count"), time.monotonic()
    push_delays, poll_delays = [], []
    for _ in range(14):
        page.wait_for_timeout(150)
        push_delays.append(stat(page, "push-delay"))
        poll_delays.append(stat(page, "poll-delay"))
    elapsed = time.monotonic() - t0
    push_rate = (stat(page, "push-count") - push0) / elapsed
    poll_rate = (stat(page, "poll-count") - poll0) / elapsed

    # The server's 60 Hz, of which a page starved of CPU (a busy machine) draws fewer: it
    # always draws the newest frame, so it may skip some, never fall behind.
    assert 25 <= push_rate <= 75, push_rate
    assert 1.0 <= poll_rate <= 2.6, poll_rate  # one poll every 500 ms, or a little later
    assert push_rate > 10 * poll_rate
    # The page's own rates (over its last second) say the same, as far apart.
    assert stat(page, "push-rate") <= 75 and 0.5 <= stat(page, "poll-rate") <= 3
    assert stat(page, "push-rate") > 3 * stat(page, "poll-rate")
    # A polled state is on screen until the next poll: typically about half an interval
    # old, against a few milliseconds for a pushed frame. Medians, because a page starved of
    # CPU for a moment (a busy machine) shows one old frame in a few samples of either feed.
    assert statistics.median(push_delays) < 60, push_delays
    assert statistics.median(poll_delays) > statistics.median(push_delays) + 100, (
        push_delays,
        poll_delays,
    )
    # Between two polls the ball moved ~30 ticks; the polled canvas shows an older tick.
    assert drawn(page, "poll")["tick"] <= drawn(page, "push")["tick"]
    # Both byte counters count what arrived: one JSON state per update.
    assert stat(page, "push-bytes") >= 100 * stat(page, "push-count")
    assert stat(page, "poll-bytes") >= 100 * stat(page, "poll-count")
    expect(page.locator("#ball-poll-error")).to_have_text("")
    assert page.page_errors == []


def test_a_python_client_steers_the_ball_on_the_page(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    canvas = page.locator("#ball-push-canvas")
    with connect(server.links.ws("/ball")) as ws:
        ws.send(json.dumps({"type": "ball.control", "paused": True}))
        expect(canvas).to_have_attribute("data-paused", "true")
        expect(page.locator("#ball-pause")).to_have_text("Resume")

        before = drawn(page)
        ws.send(json.dumps({"type": "ball.kick", "dx": 1.0, "dy": -0.5}))
        assert wait_until(lambda: drawn(page)["vx"] != before["vx"])
        after = drawn(page)
        assert after["vx"] == pytest.approx(before["vx"] + 1.0)
        assert after["vy"] == pytest.approx(before["vy"] - 0.5)
        assert (after["x"], after["y"]) == (before["x"], before["y"])  # still paused
        speed = (after["vx"] ** 2 + after["vy"] ** 2) ** 0.5
        assert float(page.locator("#ball-speed").input_value()) == pytest.approx(speed, abs=0.05)

        ws.send(json.dumps({"type": "ball.control", "paused": False}))
        expect(page.locator("#ball-pause")).to_have_text("Pause")
        assert wait_until(lambda: drawn(page)["x"] != before["x"])
    assert page.page_errors == []


def test_server_errors_show_and_the_connection_stays(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    expect(page.locator("#ball-error")).to_have_text("")
    # A slider pushed past its range (as a learner editing the page in devtools might)
    # sends a speed the server refuses with an error event.
    page.evaluate("document.getElementById('ball-speed').max = '10'")
    page.locator("#ball-speed").fill("7")
    expect(page.locator("#ball-error")).to_contain_text("bad_value")
    expect(page.locator("#ball-error")).to_contain_text("speed must be a number from 0 to 3")

    count = stat(page, "push-count")
    assert wait_until(lambda: stat(page, "push-count") > count + 10)
    expect(page.locator("#ball-status")).to_have_attribute("data-state", "open")
    assert server.lesson("ball").state.speed <= 3
    assert page.page_errors == []


def test_kick_changes_the_velocity(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    page.locator("#ball-pause").click()
    expect(page.locator("#ball-push-canvas")).to_have_attribute("data-paused", "true")
    before = drawn(page)
    page.locator("#ball-kick").click()
    assert wait_until(
        lambda: (drawn(page)["vx"], drawn(page)["vy"]) != (before["vx"], before["vy"])
    )
    state = server.lesson("ball").state
    assert abs(state.vx - before["vx"]) <= 1 and abs(state.vy - before["vy"]) <= 1
    assert page.page_errors == []


def test_leaving_the_page_closes_the_socket_and_stops_polling(
    server: WorkshopServer, page: Page
) -> None:
    # Playwright delivers events while the test is inside a Playwright call, so the
    # waits here are page.wait_for_timeout, not time.sleep.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "api/ball" in r.url else None)
    open_ball(page, server)
    page.locator("#ball-poll-interval").fill("100")
    page.wait_for_timeout(500)
    assert len(polls) >= 3
    assert server.app.clients["/ball"] == 1

    page.locator('.site-nav a[href="#echo"]').click()
    expect(page.locator("#echo-connect")).to_be_visible()
    assert wait_until(lambda: server.app.clients["/ball"] == 0), "the socket stayed open"
    page.wait_for_timeout(100)  # deliver the events of requests made before leaving
    polled = len(polls)
    page.wait_for_timeout(600)
    assert len(polls) == polled, "polling went on after leaving the page"
    assert page.evaluate("document.querySelectorAll('canvas').length") == 0

    # Coming back starts afresh.
    page.locator('.site-nav a[href="#ball"]').click()
    expect(page.locator(".site-nav a[href='#ball']")).to_have_attribute("aria-current", "page")
    expect(page.locator("#ball-status")).to_have_attribute("data-state", "open")
    assert wait_until(lambda: server.app.clients["/ball"] == 1)
    assert page.page_errors == []


def test_server_stop_says_disconnected_and_retries(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    server.stop()
    status = page.locator("#ball-status")
    # The page counts down to its next attempt (tests/test_browser_auth.py sees it succeed).
    # The first close is the server's 1001; each failed attempt after it is a 1006.
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_text(
        re.compile(r"^disconnected \((1001 going away|1006 abnormal closure)\) — reconnecting")
    )
    expect(page.locator("#ball-reconnect")).to_be_visible()
    for control in ("#ball-pause", "#ball-kick", "#ball-speed", "#ball-radius", "#ball-color"):
        expect(page.locator(control)).to_be_disabled()
    expect(page.locator("#ball-poll-error")).to_contain_text("failed")
    assert page.page_errors == []


def test_narrow_screen_stacks_the_canvases(server: WorkshopServer, page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_ball(page, server)
    push = page.locator("#ball-push-canvas").bounding_box()
    poll = page.locator("#ball-poll-canvas").bounding_box()
    assert push and poll
    assert poll["y"] >= push["y"] + push["height"], "the canvases should stack"
    assert abs(push["width"] - push["height"]) < 1.5, "the canvas should be square"
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 360px wide"
    assert page.page_errors == []


def test_wide_screen_puts_the_canvases_side_by_side(server: WorkshopServer, page: Page) -> None:
    open_ball(page, server)
    push = page.locator("#ball-push-canvas").bounding_box()
    poll = page.locator("#ball-poll-canvas").bounding_box()
    assert push and poll
    assert abs(push["y"] - poll["y"]) < 1 and poll["x"] > push["x"] + push["width"]
    assert abs(push["width"] - poll["width"]) < 1
    # Give the polled canvas time to draw, so the screenshot shows both.
    expect(page.locator("#ball-poll-canvas")).to_have_attribute("data-tick", re.compile(r"\d"))
    page.wait_for_timeout(800)
    assert page.page_errors == []
