"""The browser client's echo page, driven in a real Chromium against a real server.

Each test opens ``server.http_url + "/#echo"``, works the page the way a learner would, and
ends by checking that no script error happened. Screenshots land in test-artifacts/.

Tests ask for ``server`` before ``page`` so that fixtures tear down in the reverse order: the
page's screenshot is taken while the server still runs, and shows the state the test saw.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_until
from workshop_lib import WorkshopServer, start_server

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned=1">'
RTT = re.compile(r"^\d+(\.\d+)? ms$")


def open_echo(page: Page, server: WorkshopServer) -> None:
    page.goto(server.http_url + "/#echo")
    expect(page.locator("#echo-status")).to_have_attribute("data-state", "closed")


def connect(page: Page) -> None:
    page.locator("#echo-connect").click()
    expect(page.locator("#echo-status")).to_have_attribute("data-state", "open")
    expect(page.locator("#echo-status")).to_have_text("open")


def send(page: Page, text: str) -> None:
    page.locator("#echo-input").fill(text)
    page.locator("#echo-input").press("Enter")


def entries(page: Page, direction: str):
    return page.locator(f'#echo-log li[data-direction="{direction}"]')


def test_echo_round_trip_shows_reply_and_rtt(server: WorkshopServer, page: Page) -> None:
    open_echo(page, server)
    # The URL is derived from the page's own address, so it follows the server's port.
    expect(page.locator("#echo-url")).to_have_value(f"{server.url}/echo")

    connect(page)
    send(page, "hello")

    sent = entries(page, "sent")
    received = entries(page, "received")
    expect(sent).to_have_count(1)
    expect(sent.locator(".text")).to_have_text("hello")
    expect(received).to_have_count(1)
    expect(received.locator(".text")).to_have_text("hello")
    expect(received.locator(".rtt")).to_have_text(RTT)
    expect(received.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
    # Enter sent the message and cleared the field for the next one.
    expect(page.locator("#echo-input")).to_have_value("")

    # Replies match sends in order, each with its own round-trip time.
    for text in ("one", "two", "three"):
        send(page, text)
    expect(received.locator(".text")).to_have_text(["hello", "one", "two", "three"])
    expect(received.locator(".rtt")).to_have_count(4)
    assert page.page_errors == []


def test_markup_is_shown_as_text_and_never_runs(server: WorkshopServer, page: Page) -> None:
    open_echo(page, server)
    connect(page)
    send(page, XSS)

    expect(entries(page, "received").locator(".text")).to_have_text(XSS)
    expect(entries(page, "sent").locator(".text")).to_have_text(XSS)
    # Parsed as HTML, the string would have made an <img> whose failed load runs onerror.
    assert page.locator("#echo-log img").count() == 0
    page.wait_for_timeout(300)  # give a would-be image request time to fail
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.page_errors == []


def test_cannot_send_while_disconnected(server: WorkshopServer, page: Page) -> None:
    open_echo(page, server)
    expect(page.locator("#echo-send")).to_be_disabled()
    expect(page.locator("#echo-input")).to_be_disabled()
    expect(page.locator("#echo-disconnect")).to_be_disabled()

    connect(page)
    expect(page.locator("#echo-send")).to_be_enabled()
    expect(page.locator("#echo-connect")).to_be_disabled()

    page.locator("#echo-disconnect").click()
    status = page.locator("#echo-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text(re.compile(r"^closed \(1000 normal closure"))
    expect(status).not_to_have_attribute("data-problem", "")  # asked for, so not red
    expect(page.locator("#echo-send")).to_be_disabled()
    expect(page.locator("#echo-input")).to_be_disabled()
    expect(page.locator("#echo-connect")).to_be_enabled()

    # Even a submit that goes around the disabled button sends nothing.
    page.evaluate(
        """() => {
            document.getElementById("echo-input").value = "sneaky";
            document.getElementById("echo-send-form").requestSubmit();
        }"""
    )
    expect(entries(page, "sent")).to_have_count(0)

    # The log kept the connect and close events; Clear empties it.
    expect(entries(page, "event")).to_have_count(2)
    page.locator("#echo-clear").click()
    expect(page.locator("#echo-log li")).to_have_count(0)
    assert page.page_errors == []


def test_server_stop_shows_close_code_1001(server: WorkshopServer, page: Page) -> None:
    open_echo(page, server)
    connect(page)

    server.stop()

    status = page.locator("#echo-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text(re.compile(r"^closed \(1001 going away"))
    expect(status).to_have_attribute("data-problem", "")  # shown in red: the server left
    expect(page.locator("#echo-send")).to_be_disabled()
    expect(entries(page, "event").last).to_contain_text("1001 going away")
    assert page.page_errors == []


def test_router_default_unknown_and_leaving_closes_socket(
    server: WorkshopServer, page: Page
) -> None:
    # No fragment: the first lesson, so "/" is useful on its own.
    page.goto(server.http_url + "/")
    expect(page.locator("#echo-connect")).to_be_visible()
    connect(page)
    assert wait_until(lambda: server.app.clients["/echo"] == 1)

    # An unknown page lists the real ones, and leaving the echo page closes its socket.
    page.evaluate("location.hash = '#no-such-page'")
    index = page.locator("#page-index")
    expect(index).to_contain_text("no-such-page")
    expect(page.locator("#echo-connect")).to_have_count(0)
    assert wait_until(lambda: server.app.clients["/echo"] == 0), "the socket stayed open"

    # The header's nav link brings the echo page back, marked as the current page.
    page.locator('.site-nav a[href="#echo"]').click()
    expect(page.locator("#echo-connect")).to_be_visible()
    expect(page.locator('.site-nav a[href="#echo"]')).to_have_attribute("aria-current", "page")
    expect(page).to_have_title(re.compile("^Echo"))
    assert page.page_errors == []


def test_page_loads_its_files_with_the_right_types(server: WorkshopServer, page: Page) -> None:
    # Chromium refuses a module script served with a non-JavaScript type, and a missing
    # favicon would show up here as a 404: every request the page makes must succeed.
    responses = []
    page.on("response", lambda response: responses.append(response))
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    open_echo(page, server)
    page.wait_for_load_state("networkidle")

    types = {
        r.url.removeprefix(server.http_url): r.headers.get("content-type", "") for r in responses
    }
    assert [r.url for r in responses if r.status >= 400] == []
    assert failed == []
    assert types["/"].startswith("text/html")
    assert types["/static/style.css"].startswith("text/css")
    scripts = [path for path in types if path.endswith(".js")]
    assert {"/static/main.js", "/lessons/echo/echo.js", "/static/dom.js"} <= set(scripts)
    for path in scripts:
        assert types[path].startswith("text/javascript"), (path, types[path])
    assert page.page_errors == []


def test_narrow_screen_has_no_sideways_scroll(server: WorkshopServer, page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_echo(page, server)
    connect(page)
    send(page, "a-long-message-without-spaces-" * 8)
    send(page, "short")
    expect(entries(page, "received")).to_have_count(2)

    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 360px wide"
    for selector in ("#echo-url", "#echo-input", "#echo-send", "#echo-log"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
    assert page.page_errors == []


def test_the_navigation_lists_the_lessons_the_server_runs(page: Page) -> None:
    """A server with other lessons gets other pages, with no change to main.js or index.html."""
    from tests.test_lesson import ShoutLesson  # a lesson the browser client never heard of

    with start_server(port=0, name=f"nav-{uuid.uuid4().hex[:6]}", lessons=[ShoutLesson()]) as s:
        page.goto(f"{s.http_url}/#shout")
        nav = page.locator(".site-nav a")
        expect(nav).to_have_text(["Shout", "Room"])
        expect(page.locator('.site-nav a[data-page="shout"]')).to_have_attribute(
            "aria-current", "page"
        )
        expect(page.locator("#echo-status")).to_be_visible()  # its page module was mounted
        page.goto(f"{s.http_url}/#ball")
        expect(page.get_by_test_id("page-index")).to_contain_text("no page called “ball”")
    assert page.page_errors == []
