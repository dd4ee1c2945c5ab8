"""The browser client's chat page, driven in real Chromium pages against a real server.

Pages join through the deep link ``/?name=ada#chat``; Python members
(:class:`~workshop_lib.chat.client.ChatClient`) sit in the same room, so the tests compare
what each page *shows* (``#chat-messages li[data-kind="message"]``, with ``data-id``,
``.from`` and ``.text``) with what the server sent.

Tests ask for ``server`` before ``page`` so that the page's screenshot is taken while the
server still runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_until
from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned=1">'
BOLD = "<b>bold</b>"
# Lines of the current room (a server restart marks the earlier ones data-stale).
MESSAGES = '#chat-messages li[data-kind="message"]:not([data-stale])'


def open_chat(page: Page, server: WorkshopServer, name: str | None = None) -> None:
    """Open the chat page; with a name, through the deep link, and wait until joined."""
    query = f"?name={quote(name)}" if name is not None else ""
    page.goto(f"{server.http_url}/{query}#chat")
    status = page.locator("#chat-status")
    if name is None:
        expect(status).to_have_attribute("data-state", "idle")
    else:
        expect(status).to_have_attribute("data-state", "joined")


def send(page: Page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def shown(page: Page) -> list[tuple[int, str, str]]:
    """The current room's messages on a page: (id, sender, text), top to bottom."""
    rows = page.locator(MESSAGES).evaluate_all(
        """lines => lines.map(li => [Number(li.dataset.id),
            li.querySelector(".from").textContent, li.querySelector(".text").textContent])"""
    )
    return [tuple(row) for row in rows]


def received(client: ChatClient) -> list[tuple[int, str, str]]:
    return [(m["id"], m["from"], m["text"]) for m in list(client.messages)]


def flood(page: Page, count: int) -> None:
    """Submit ``count`` messages from the page as fast as script can (no waiting between)."""
    page.evaluate(
        """count => {
            const input = document.getElementById("chat-input");
            const form = document.getElementById("chat-send-form");
            for (let i = 0; i < count; i++) {
                input.value = `flood ${i}`;
                form.requestSubmit();
            }
        }""",
        count,
    )


@contextmanager
def second_page(browser, server: WorkshopServer, name: str) -> Iterator[Page]:
    """Another person's browser (its own context) on the chat page, joined as ``name``."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        other = context.new_page()
        errors: list[str] = []
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        other.page_errors = errors
        open_chat(other, server, name)
        yield other
    finally:
        context.close()


def test_two_pages_and_a_python_client_see_one_order(
    server: WorkshopServer, page: Page, browser
) -> None:
    open_chat(page, server, "ada")
    expect(page.locator("#chat-you")).to_have_text("ada")
    expect(page.locator("#chat-status")).to_have_text("joined as ada")

    with second_page(browser, server, "bob") as bob:
        with ChatClient(server.links.ws("/chat"), "py") as py:
            for p in (page, bob):
                expect(p.locator("#chat-users li")).to_have_text(["ada", "bob", "py"])
                expect(p.locator("#chat-user-count")).to_have_text("3")
            expect(page.locator("#chat-users li.me")).to_have_text("ada")
            expect(bob.locator("#chat-users li.me")).to_have_text("bob")
            expect(page.locator('#chat-messages li[data-kind="joined"]')).to_have_text(
                [
                    re.compile(r"ada joined \(you\)$"),
                    re.compile(r"bob joined$"),
                    re.compile(r"py joined$"),
                ]
            )

            # Three senders at once: the order is the server's, and the same for everyone.
            send(page, "hello from ada")
            send(bob, "hi ada, bob here")
            py.send("and python")
            send(page, "   spaces are trimmed   ")
            for p in (page, bob):
                expect(p.locator(MESSAGES)).to_have_count(4)
            assert wait_until(lambda: len(py.messages) == 4)
            assert shown(page) == shown(bob) == received(py)

            ids = [row[0] for row in shown(page)]
            assert ids == sorted(set(ids)), ids  # strictly increasing
            assert {(row[1], row[2]) for row in shown(page)} == {
                ("ada", "hello from ada"),
                ("bob", "hi ada, bob here"),
                ("py", "and python"),
                ("ada", "spaces are trimmed"),
            }
            # Own messages look different: ada's lines on ada's page, bob's on bob's.
            own = {"ada": page, "bob": bob}
            for name, p in own.items():
                for line in p.locator(MESSAGES).all():
                    mine = line.locator(".from").text_content() == name
                    assert ("mine" in (line.get_attribute("class") or "").split()) == mine
            expect(page.locator(f"{MESSAGES} time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))

        # The Python member left: both pages say so and drop it from the list.
        for p in (page, bob):
            expect(p.locator('#chat-messages li[data-kind="left"]').last).to_have_text(
                re.compile(r"py left$")
            )
            expect(p.locator("#chat-users li")).to_have_text(["ada", "bob"])
            expect(p.locator("#chat-user-count")).to_have_text("2")
        assert bob.page_errors == []

    # Closing bob's browser is a leave too.
    expect(page.locator('#chat-messages li[data-kind="left"]').last).to_have_text(
        re.compile(r"bob left$")
    )
    expect(page.locator("#chat-users li")).to_have_text(["ada"])
    assert page.page_errors == []


def test_markup_in_names_and_messages_is_shown_as_text(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server, "<b>ada</b>")
    expect(page.locator("#chat-you")).to_have_text("<b>ada</b>")

    with ChatClient(server.links.ws("/chat"), "<i>eve</i>") as eve:
        expect(page.locator("#chat-users li")).to_have_text(["<b>ada</b>", "<i>eve</i>"])
        eve.send(f"{XSS} and {BOLD}")
        send(page, BOLD)
        expect(page.locator(MESSAGES)).to_have_count(2)
        assert shown(page) == [
            (1, "<i>eve</i>", f"{XSS} and {BOLD}"),
            (2, "<b>ada</b>", BOLD),
        ]
        assert wait_until(lambda: len(eve.messages) == 2)

    # Parsed as HTML, these strings would have made elements (and the <img> would have run
    # its onerror once its load failed).
    for selector in (
        "#chat-messages img",
        "#chat-messages b",
        "#chat-messages i",
        "#chat-users b",
        "#chat-users i",
        "#chat-you b",
        "#chat-status b",
    ):
        assert page.locator(selector).count() == 0, selector
    page.wait_for_timeout(300)  # give a would-be image request time to fail
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.page_errors == []


def test_a_taken_name_gets_a_number(server: WorkshopServer, page: Page) -> None:
    with ChatClient(server.links.ws("/chat"), "ada") as first:
        open_chat(page, server, "ada")
        expect(page.locator("#chat-you")).to_have_text("ada 2")
        expect(page.locator("#chat-status")).to_have_text("joined as ada 2")
        expect(page.locator("#chat-users li")).to_have_text(["ada", "ada 2"])
        expect(page.locator("#chat-users li.me")).to_have_text("ada 2")

        send(page, "which ada am I?")
        assert wait_until(lambda: received(first) == [(1, "ada 2", "which ada am I?")])
        expect(page.locator(f"{MESSAGES}.mine .from")).to_have_text("ada 2")
    assert page.page_errors == []


def test_deep_link_in_form_encoding(server: WorkshopServer, page: Page) -> None:
    # Python's urlencode (what links.page(..., name=...) produces) writes a space as "+".
    page.goto(f"{server.http_url}/?{urlencode({'name': ' ada lovelace '})}#chat")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("ada lovelace")
    assert server.lesson("chat").room.users == ["ada lovelace"]
    assert page.page_errors == []


def test_join_form_leave_and_leaving_the_page(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server)
    # Not joined: nothing to send with, and the deep link pattern is there for instructors.
    expect(page.locator("#chat-input")).to_be_disabled()
    expect(page.locator("#chat-send")).to_be_disabled()
    expect(page.locator("#chat-rejoin")).to_be_hidden()
    expect(page.locator("#chat-deep-link")).to_have_text(f"{server.http_url}/?name=NAME#chat")
    expect(page.locator('.site-nav a[href="#chat"]')).to_have_attribute("aria-current", "page")
    expect(page).to_have_title(re.compile("^Chat"))
    # A submit that goes around the disabled button sends nothing.
    page.evaluate(
        """() => {
            document.getElementById("chat-input").value = "sneaky";
            document.getElementById("chat-send-form").requestSubmit();
        }"""
    )

    # A blank name is refused on the page; a padded one is trimmed.
    page.locator("#chat-name").fill("   ")
    page.locator("#chat-join").click()
    expect(page.locator("#chat-error")).to_have_attribute("data-code", "bad_value")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "idle")
    assert server.app.clients["/chat"] == 0

    page.locator("#chat-name").fill("  grace  ")
    page.locator("#chat-name").press("Enter")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("grace")
    expect(page.locator("#chat-input")).to_be_enabled()
    expect(page.locator("#chat-input")).to_have_attribute("maxlength", "500")
    assert server.lesson("chat").room.users == ["grace"]
    assert list(server.lesson("chat").room.history) == []  # the sneaky submit never went out

    # Leave: closed on purpose (not red), no reconnecting, and the name form is back.
    page.locator("#chat-leave").click()
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text("left the room (1000 normal closure)")
    expect(status).not_to_have_attribute("data-problem", "")
    expect(page.locator("#chat-input")).to_be_disabled()
    expect(page.locator("#chat-join")).to_be_visible()
    expect(page.locator("#chat-users li")).to_have_count(0)
    assert wait_until(lambda: server.lesson("chat").room.users == [])
    page.wait_for_timeout(800)  # longer than the first reconnect delay would be
    expect(status).to_have_attribute("data-state", "closed")
    assert server.app.clients["/chat"] == 0

    # Join again, then leave the page: its socket closes with it.
    page.locator("#chat-join").click()
    expect(status).to_have_attribute("data-state", "joined")
    page.evaluate("location.hash = '#echo'")
    expect(page.locator("#echo-connect")).to_be_visible()
    assert wait_until(lambda: server.app.clients["/chat"] == 0), "the socket stayed open"
    assert server.lesson("chat").room.users == []
    assert page.page_errors == []


def test_reconnects_after_a_server_restart(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server, "ada")
    send(page, "before the restart")
    expect(page.locator(MESSAGES)).to_have_count(1)
    port, name = server.port, server.name

    server.stop()
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_text(re.compile(r"^reconnecting"))
    expect(page.locator('#chat-messages li[data-kind="error"]').last).to_have_text(
        re.compile(r"Connection lost \(1001 going away")
    )
    expect(page.locator("#chat-input")).to_be_disabled()
    expect(page.locator("#chat-rejoin")).to_have_text("Retry now")
    # Let a few attempts fail against the closed port (each one backs off further).
    page.wait_for_timeout(1500)
    expect(status).to_have_attribute("data-state", "reconnecting")

    restarted = start_server(port=port, name=name)
    try:
        expect(status).to_have_attribute("data-state", "joined", timeout=15_000)
        expect(status).to_have_text("joined as ada")
        expect(page.locator("#chat-you")).to_have_text("ada")
        expect(page.locator("#chat-rejoin")).to_be_hidden()
        # The earlier line stays, marked as from before; the new room starts empty.
        earlier = page.locator('#chat-messages li[data-kind="message"][data-stale]')
        expect(earlier).to_have_count(1)
        expect(earlier.locator(".text")).to_have_text("before the restart")
        expect(page.locator("#chat-messages li[data-kind=notice]").last).to_contain_text("new room")
        assert shown(page) == []

        with ChatClient(restarted.links.ws("/chat"), "py") as py:
            expect(page.locator("#chat-users li")).to_have_text(["ada", "py"])
            send(page, "after the restart")
            assert wait_until(lambda: received(py) == [(1, "ada", "after the restart")])
            # Id 1 again, in a new room: shown, not mistaken for the old message 1.
            expect(page.locator(MESSAGES)).to_have_count(1)
            assert shown(page) == [(1, "ada", "after the restart")]
        assert page.page_errors == []
    finally:
        restarted.stop()


def test_rejoining_the_same_room_does_not_repeat_messages(
    server: WorkshopServer, page: Page
) -> None:
    open_chat(page, server, "ada")
    with ChatClient(server.links.ws("/chat"), "py") as py:
        py.send("one")
        send(page, "two")
        expect(page.locator(MESSAGES)).to_have_count(2)

        # The server drops the page's connection (1012: service restart); the room stays.
        ada = server.lesson("chat").members["ada"]
        server.run(ada.close(1012, "test: dropped"))
        py.send("said while ada was away")  # most likely arrives in ada's welcome history

        status = page.locator("#chat-status")
        expect(page.locator('#chat-messages li[data-kind="error"]').last).to_have_text(
            re.compile(r"Connection lost \(1012")
        )
        expect(status).to_have_attribute("data-state", "joined", timeout=10_000)
        expect(page.locator("#chat-you")).to_have_text("ada")
        py.send("three")
        assert wait_until(lambda: len(py.messages) == 4)
        expect(page.locator(MESSAGES)).to_have_count(4)
        # The welcome's history repeated "one" and "two": each is still shown once.
        assert shown(page) == received(py)
        assert page.locator("#chat-messages li[data-stale]").count() == 0
    assert page.page_errors == []


def test_rate_limit_shows_an_error_and_stays_joined(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server, "ada")
    flood(page, 15)

    error = page.locator("#chat-error")
    expect(error).to_have_attribute("data-code", "rate_limited")
    expect(error).to_contain_text("rate_limited")
    # The room took what was left of the burst of 10 after the join (and one more per
    # 200 ms while the sends arrive);
    # each dropped one was answered with an error. Errors in a row are one line in the
    # list, with a count: every send is accounted for, once.
    errors = page.locator('#chat-messages li[data-kind="error"][data-code="rate_limited"]')

    def tally() -> tuple[int, int]:
        counts = errors.evaluate_all("lines => lines.map(li => Number(li.dataset.count))")
        return page.locator(MESSAGES).count(), sum(counts)

    assert wait_until(lambda: sum(tally()) == 15), tally()
    delivered, dropped = tally()
    assert 9 <= delivered < 15 and dropped == 15 - delivered
    assert len(server.lesson("chat").room.history) == delivered
    assert 1 <= errors.count() <= dropped

    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-input")).to_be_enabled()
    page.wait_for_timeout(500)  # the bucket refills at 5 a second
    send(page, "calm again")
    expect(page.locator(f"{MESSAGES} .text").last).to_have_text("calm again")
    assert page.page_errors == []


def test_sustained_flooding_closes_with_4029_and_offers_rejoin(
    server: WorkshopServer, page: Page
) -> None:
    # The join and 9 messages use up the burst of 10; then each message is refused with a
    # rate_limited error, and after 20 refusals (refilling 1 a second) the server closes the
    # connection with 4029. The page counts refusals in a row on one line. A message that
    # passes ends the row, and one passes whenever the bucket has refilled a token: at the
    # default 5 a second, or even 1, that happens when Chromium or the server's thread is
    # slow to get through the flood (a busy machine split 20 refusals into 14 and 6). At one
    # message in 1000 s no token comes back while the test runs, however slow it is, and
    # the flood comes in two bursts, more than a second apart, to show that.
    server.lesson("chat").rate = 0.001  # read when the page connects
    open_chat(page, server, "ada")
    flood(page, 15)
    refused = page.locator('#chat-messages li[data-kind="error"][data-code="rate_limited"]')
    expect(refused).to_have_count(1)
    page.wait_for_timeout(1500)  # a slow sender: longer than a token took at 1 a second
    flood(page, 100)

    status = page.locator("#chat-status")
    # The close event comes once the closing handshake is over, which waits behind the
    # messages Chromium still had queued (up to the server's close_timeout of 2 s).
    expect(status).to_have_attribute("data-state", "closed", timeout=10_000)
    expect(status).to_have_text(re.compile(r"^closed \(4029 rate limited"))
    expect(status).to_have_attribute("data-problem", "")
    rejoin = page.locator("#chat-rejoin")
    expect(rejoin).to_be_visible()
    expect(rejoin).to_have_text("Rejoin")
    expect(page.locator("#chat-input")).to_be_disabled()
    # Not retried on its own: the same flood would only be closed again.
    page.wait_for_timeout(1200)
    expect(status).to_have_attribute("data-state", "closed")
    # The server's side of the close may still wait for Chromium's reply, queued behind the
    # flood (up to its close_timeout of 2 s): then ada leaves the room.
    room = server.lesson("chat").room
    assert wait_until(lambda: room.users == [], 5), room.users

    # The refusals before the close (20, and one more for each second the flood took) came
    # in a row: one line counts them; the close's own error (flooding) follows it.
    lines = page.locator("#chat-messages li").evaluate_all(
        "lines => lines.map(li => [li.dataset.kind, li.dataset.code, li.dataset.count])"
    )
    refusals = [int(count) for _, code, count in lines if code == "rate_limited"]
    assert len(refusals) == 1 and refusals[0] >= 20, lines[-4:]

    rejoin.click()
    expect(status).to_have_attribute("data-state", "joined")
    expect(page.locator("#chat-you")).to_have_text("ada")
    expect(rejoin).to_be_hidden()
    assert page.page_errors == []


def test_leaving_the_page_cancels_reconnecting(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server, "ada")
    port, name = server.port, server.name
    server.stop()
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "reconnecting")
    page.evaluate("location.hash = '#echo'")
    expect(page.locator("#echo-connect")).to_be_visible()

    restarted = start_server(port=port, name=name)
    try:
        # Longer than the next few backoff delays: a leftover timer would have connected.
        page.wait_for_timeout(3000)
        assert restarted.app.clients["/chat"] == 0
        assert restarted.lesson("chat").room.users == []
    finally:
        restarted.stop()
    assert page.page_errors == []


def test_backoff_doubles_with_jitter_up_to_ten_seconds(server: WorkshopServer, page: Page) -> None:
    open_chat(page, server)
    delays = page.evaluate(
        """async () => {
            const { backoffDelay } = await import("./static/reconnect.js");
            const at = (r) => [0, 1, 2, 3, 4, 5, 9].map(
                (a) => backoffDelay(a, { random: () => r }));
            const sample = Array.from({ length: 200 }, () => backoffDelay(2));
            return { low: at(0), mid: at(0.5), high: at(0.999999), sample };
        }"""
    )
    assert delays["mid"] == [500, 1000, 2000, 4000, 8000, 10000, 10000]
    assert delays["low"] == [400, 800, 1600, 3200, 6400, 8000, 8000]  # -20%
    assert delays["high"] == [600, 1200, 2400, 4800, 9600, 10000, 10000]  # +20%, capped
    sample = delays["sample"]
    assert all(1600 <= d <= 2400 for d in sample)
    assert len(set(sample)) > 20, "no jitter: every page would retry at the same moment"
    assert page.page_errors == []


def test_narrow_screen_has_no_sideways_scroll(server: WorkshopServer, page: Page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    with ChatClient(server.links.ws("/chat"), "someone-with-a-rather-long-name") as other:
        open_chat(page, server, "ada")
        other.send("a-long-message-without-spaces-" * 8)
        send(page, "short")
        expect(page.locator(MESSAGES)).to_have_count(2)

        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 360px wide"
        for selector in (
            "#chat-name",
            "#chat-input",
            "#chat-send",
            "#chat-messages",
            "#chat-users",
        ):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
    assert page.page_errors == []
