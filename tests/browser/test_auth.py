"""The browser client on a server with a token: the token link, the token form, heartbeats,
and reconnecting by itself after a restart. Real Chromium pages against a real server.

A page gets the token from its link's fragment (``#chat&token=T``, made by
``server.links.page``), keeps it in sessionStorage, takes it out of the address bar, and sends
``{"type": "auth", "token": T}`` as its first message (static/auth.js, static/connection.js).

Tests ask for ``token_server`` before ``page`` so that the page's screenshot is taken while
the server still runs.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_until
from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient

pytestmark = pytest.mark.browser

# Characters that must be percent-encoded in a fragment: the page has to decode it right.
TOKEN = "s3cret/with+odd&chars=%"
MESSAGES = '#chat-messages li[data-kind="message"]:not([data-stale])'


class Restartable:
    """The current server of a test, which the test may stop and start again on its port."""

    def __init__(self) -> None:
        self.name = f"auth-{uuid.uuid4().hex[:8]}"
        self.server: WorkshopServer = start_server(port=0, name=self.name, token=TOKEN)
        self.port = self.server.port

    def restart(self, *, pause: float = 0.0) -> WorkshopServer:
        """Stop the server, wait ``pause`` seconds, and start a new one on the same port."""
        self.server.stop()
        time.sleep(pause)
        self.server = start_server(port=self.port, name=self.name, token=TOKEN)
        return self.server


@pytest.fixture
def token_server() -> Iterator[Restartable]:
    """A server that wants TOKEN, stopped after the test (whichever one is running then)."""
    holder = Restartable()
    try:
        yield holder
    finally:
        holder.server.stop()


def websocket_frames(page: Page) -> dict[str, dict[str, list]]:
    """Record the WebSockets the page opens: the last part of the URL's path (``chat``) -> its
    first socket's URL, frames sent and received, and how many sockets went there.

    Playwright delivers these events while the test is inside a Playwright call, so tests
    wait with page.wait_for_timeout or expect(), not time.sleep.
    """
    sockets: dict[str, dict[str, list]] = {}

    def opened(ws) -> None:
        record = {"url": [ws.url], "sent": [], "received": [], "opened": []}
        record = sockets.setdefault(ws.url.rsplit("/", 1)[-1], record)
        record["opened"].append(ws.url)
        if len(record["opened"]) > 1:
            return  # only the first socket's frames: a test looks at one connection
        ws.on("framesent", lambda payload: record["sent"].append(payload))
        ws.on("framereceived", lambda payload: record["received"].append(payload))

    page.on("websocket", opened)
    return sockets


def events(frames: list) -> list[dict]:
    return [json.loads(f) for f in frames if isinstance(f, str)]


def heartbeats(frames: list) -> int:
    return sum(1 for event in events(frames) if event == {"type": "heartbeat"})


def test_a_token_link_joins_and_the_token_leaves_the_address_bar(
    token_server: Restartable, page: Page
) -> None:
    server = token_server.server
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sockets = websocket_frames(page)
    link = server.links.page("chat", name="ada")
    assert link.endswith("#chat&token=" + quote(TOKEN, safe=""))

    page.goto(link)
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("ada")
    expect(page.locator("#auth-form")).to_be_hidden()
    assert server.lesson("chat").room.users == ["ada"]

    # The address bar keeps the page and the name, not the token; the tab's storage has it.
    assert page.url == f"{server.http_url}/?name=ada#chat"
    assert page.evaluate("sessionStorage.getItem('workshop.token')") == TOKEN
    # Nothing the page asked the server for carried it (the fragment never leaves the page).
    assert requests and not [url for url in requests if "token" in url or "s3cret" in url]
    # The token went as the first message, the join after the server's auth.ok.
    chat = sockets["chat"]
    assert "token" not in chat["url"][0]
    assert events(chat["sent"])[:2] == [
        {"type": "auth", "token": TOKEN},
        {"type": "chat.join", "name": "ada"},
    ]
    assert events(chat["received"])[0] == {"type": "auth.ok"}

    # A reload (no token in the address any more) authenticates from storage.
    page.reload()
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("ada")

    with ChatClient(server.links.ws("/chat"), "py", token=TOKEN) as py:
        expect(page.locator("#chat-users li")).to_have_text(["ada", "py"])
        page.locator("#chat-input").fill("hello with a token")
        page.locator("#chat-input").press("Enter")
        assert wait_until(lambda: [m["text"] for m in py.messages] == ["hello with a token"])
    assert page.page_errors == []


def test_a_wrong_token_shows_the_form_and_the_right_one_joins(
    token_server: Restartable, page: Page
) -> None:
    server = token_server.server
    sockets = websocket_frames(page)
    page.goto(f"{server.http_url}/?name=ada#chat&token=wrong")
    assert page.url == f"{server.http_url}/?name=ada#chat"

    form = page.locator("#auth-form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("This server needs a token: ask your instructor.")
    expect(page.locator("#auth-reason")).to_have_text(
        "The server said: 4001 unauthorized: wrong token"
    )
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text("closed (4001 unauthorized: wrong token)")
    expect(page.locator("#chat-rejoin")).to_be_hidden()
    # The refused token is forgotten, and the page does not keep trying on its own.
    assert page.evaluate("sessionStorage.getItem('workshop.token')") is None
    page.wait_for_timeout(1500)  # longer than the first two reconnect delays would be
    assert len(sockets["chat"]["opened"]) == 1 and server.app.clients["/chat"] == 0
    expect(status).to_have_attribute("data-state", "closed")

    page.locator("#auth-token").fill(TOKEN)
    page.locator("#auth-token").press("Enter")
    expect(status).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("ada")
    expect(form).to_be_hidden()
    assert server.lesson("chat").room.users == ["ada"]
    assert page.evaluate("sessionStorage.getItem('workshop.token')") == TOKEN
    assert page.page_errors == []


def test_no_token_at_all_asks_before_connecting_and_the_echo_page_authenticates(
    token_server: Restartable, page: Page
) -> None:
    server = token_server.server
    sockets = websocket_frames(page)
    page.goto(server.http_url + "/#echo")
    expect(page.locator("#auth-form")).to_be_hidden()

    # healthz says a token is needed: the form comes up without a doomed connection first.
    page.locator("#echo-connect").click()
    expect(page.locator("#auth-form")).to_be_visible()
    expect(page.locator("#auth-reason")).to_be_hidden()
    status = page.locator("#echo-status")
    expect(status).to_have_text("this server needs a token")
    expect(status).to_have_attribute("data-problem", "")
    assert sockets == {}

    page.locator("#auth-token").fill(TOKEN)
    page.locator("#auth-submit").click()
    expect(status).to_have_attribute("data-state", "open")
    expect(status).to_have_text("open")
    log = page.locator("#echo-log li")
    # auth.ok is the server speaking, not an echo: an event line, and the token is not shown.
    expect(log).to_have_count(2)
    expect(log.nth(0)).to_have_attribute("data-direction", "event")
    expect(log.nth(1)).to_have_attribute("data-direction", "event")
    expect(log.nth(1)).to_contain_text("auth.ok")
    assert TOKEN not in page.locator("#echo-log").inner_text()

    page.locator("#echo-input").fill("hello")
    page.locator("#echo-input").press("Enter")
    received = page.locator('#echo-log li[data-direction="received"]')
    expect(received.locator(".text")).to_have_text(["hello"])
    expect(received.locator(".rtt")).to_have_count(1)
    sent = sockets["echo"]["sent"]
    assert [json.loads(sent[0]), sent[1:]] == [{"type": "auth", "token": TOKEN}, ["hello"]]
    assert page.page_errors == []


def test_the_token_is_not_sent_to_another_server(token_server: Restartable, page: Page) -> None:
    server = token_server.server
    with start_server(port=0, name=f"other-{uuid.uuid4().hex[:8]}") as other:
        sockets = websocket_frames(page)
        page.goto(server.links.page("echo"))
        page.locator("#echo-url").fill(other.links.ws("/echo"))
        page.locator("#echo-connect").click()
        expect(page.locator("#echo-status")).to_have_text("open")
        page.locator("#echo-input").fill("hi")
        page.locator("#echo-input").press("Enter")
        expect(page.locator('#echo-log li[data-direction="received"] .text')).to_have_text("hi")
        assert [f for s in sockets.values() for f in s["sent"]] == ["hi"]
    assert page.page_errors == []


def test_the_ball_page_animates_on_a_token_server(token_server: Restartable, page: Page) -> None:
    server = token_server.server
    page.goto(server.links.page("ball"))
    expect(page.locator("#ball-status")).to_have_attribute("data-state", "open")
    assert page.url == f"{server.http_url}/#ball"
    canvas = page.locator("#ball-push-canvas")
    expect(canvas).to_have_attribute("data-tick", re.compile(r"\d"))
    first = int(canvas.get_attribute("data-tick"))
    expect(page.locator("#ball-push-count")).to_have_attribute(
        "data-value",
        re.compile(r"^([3-9]\d|\d{3,})$"),  # 30 frames or more
    )
    # The count may have been past 30 already: wait for a frame after the first one read.
    page.wait_for_function(
        "(first) => Number(document.querySelector('#ball-push-canvas').dataset.tick) > first",
        arg=first,
    )
    # The polled side sends the token as a header (fetch can, a WebSocket cannot).
    expect(page.locator("#ball-poll-count")).to_have_attribute("data-value", re.compile(r"^[1-9]"))
    expect(page.locator("#ball-poll-error")).to_have_text("")
    expect(page.locator("#ball-pause")).to_be_enabled()
    assert server.app.clients["/ball"] == 1
    assert page.page_errors == []


def test_the_chat_rejoins_under_its_name_after_a_restart(
    token_server: Restartable, page: Page
) -> None:
    page.goto(token_server.server.links.page("chat", name="ada"))
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "joined")

    token_server.server.stop()
    expect(status).to_have_attribute("data-state", "reconnecting")
    # Restart while the page waits 2 s or more for its next attempt: the Python member is
    # then in the room first, and sees the page join.
    expect(status).to_have_text(re.compile(r"^reconnecting in [3-9] s"), timeout=10_000)
    server = start_server(port=token_server.port, name=token_server.name, token=TOKEN)
    token_server.server = server
    with ChatClient(server.links.ws("/chat"), "py", token=TOKEN) as py:
        assert py.users == ["py"]
        expect(status).to_have_attribute("data-state", "joined", timeout=15_000)
        expect(page.locator("#chat-you")).to_have_text("ada")
        assert wait_until(lambda: {"type": "chat.joined", "name": "ada"} in py.events)
        expect(page.locator("#chat-users li")).to_have_text(["py", "ada"])
    assert page.page_errors == []


def test_the_ball_resumes_after_a_restart(token_server: Restartable, page: Page) -> None:
    page.goto(token_server.server.links.page("ball"))
    status = page.locator("#ball-status")
    expect(status).to_have_attribute("data-state", "open")

    server = token_server.restart(pause=1.0)  # a few attempts fail meanwhile
    count = float(page.locator("#ball-push-count").get_attribute("data-value"))
    expect(status).to_have_attribute("data-state", "open", timeout=15_000)
    assert wait_until(lambda: server.app.clients["/ball"] == 1)
    assert wait_until(
        lambda: float(page.locator("#ball-push-count").get_attribute("data-value")) > count + 30
    )
    # The frames on the canvas are the new server's (its ticks started again from 0).
    tick = int(page.locator("#ball-push-canvas").get_attribute("data-tick"))
    assert tick <= server.lesson("ball").state.tick
    expect(page.locator("#ball-reconnect")).to_be_hidden()
    expect(page.locator("#ball-pause")).to_be_enabled()
    assert page.page_errors == []


def test_heartbeats_are_sent_and_answered(token_server: Restartable, page: Page) -> None:
    server = token_server.server
    sockets = websocket_frames(page)
    # One every 2 s: the page calls a connection dead after two silent intervals, and a
    # machine running the suite beside busy loops can hold an answer up for 2 s (a page that
    # rejoins sends its heartbeats on a new socket, which this one's count does not see).
    page.goto(server.links.page("chat", name="ada", heartbeat="2"))
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "joined")
    chat = sockets["chat"]
    started = time.monotonic()
    while heartbeats(chat["sent"]) < 3 and time.monotonic() - started < 30:
        page.wait_for_timeout(100)  # Playwright records the frames while it waits
    elapsed, sent = time.monotonic() - started, heartbeats(chat["sent"])
    assert 3 <= sent <= elapsed / 2 + 2, (sent, elapsed, chat["opened"])  # never faster
    while heartbeats(chat["received"]) < sent and time.monotonic() - started < 30:
        page.wait_for_timeout(100)
    assert heartbeats(chat["received"]) >= sent, (sent, chat["received"][-3:])
    assert len(chat["opened"]) == 1, chat["opened"]  # answered in time: never called dead
    # The answers are the connection's business: nothing about them on the page.
    expect(page.locator("#chat-messages li")).to_have_count(1)  # "ada joined (you)"
    expect(page.locator("#chat-error")).to_have_text("")

    # Without ?heartbeat= the interval is 15 s.
    page.goto(server.links.page("chat"))
    interval = page.evaluate("async () => (await import('./static/connection.js')).HEARTBEAT_MS")
    assert interval == 15_000
    assert page.page_errors == []


def test_a_server_that_stops_answering_is_found_by_heartbeats(
    token_server: Restartable, page: Page
) -> None:
    server = token_server.server
    page.goto(server.links.page("chat", name="ada", heartbeat="1"))
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "joined")

    # Block the server's event loop: its TCP connections stay up (the kernel still ACKs),
    # but not one WebSocket byte comes back, as with a hung server. No close event will
    # come either, so only the page's heartbeat can notice.
    async def hang() -> None:
        time.sleep(6)

    started = time.monotonic()
    hung = server.submit(hang())
    lost = page.locator('#chat-messages li[data-kind="error"]')
    expect(lost).to_have_text(
        [re.compile(r"Connection lost \(no answer to heartbeats for [23] s\)")], timeout=4_500
    )
    assert time.monotonic() - started < 5, "found only after the server answered again"
    expect(status).to_have_attribute("data-state", "reconnecting")
    hung.result(timeout=10)

    # Once the server answers again, the page is back in the room.
    expect(status).to_have_attribute("data-state", "joined", timeout=15_000)
    expect(page.locator("#chat-you")).to_have_text(re.compile(r"^ada( 2)?$"))
    assert page.page_errors == []


def test_the_token_form_fits_a_narrow_screen(token_server: Restartable, page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(token_server.server.http_url + "/#ball")  # connects at once: needs the token
    expect(page.locator("#auth-form")).to_be_visible()
    expect(page.locator("#ball-status")).to_have_text("this server needs a token")
    expect(page.locator("#ball-pause")).to_be_disabled()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 360px wide"
    for selector in ("#auth-token", "#auth-submit"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector

    page.locator("#auth-token").fill(TOKEN)
    page.locator("#auth-submit").click()
    expect(page.locator("#ball-status")).to_have_attribute("data-state", "open")
    expect(page.locator("#auth-form")).to_be_hidden()
    assert page.page_errors == []
