"""Behind a proxy that drops close codes, the chat page still tells a wrong token and a flood
for what they are, and does not reconnect.

The page is served through a real relay (tests/relay.py) that forwards every byte but the
server's close frame, which it replaces by cutting the TCP connection: the page's WebSocket
closes with 1006, as behind jupyter-server-proxy. Only the server's in-band ``error`` event
(``"close": 4001`` / ``4029``) says what happened. "Does not retry" is proven with
Playwright's fake clock: a minute of the page's timers is run at once, which is longer than
any reconnect wait, and no second WebSocket opens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.relay import CloseDroppingRelay
from workshop_lib import WorkshopServer, start_server

pytestmark = pytest.mark.browser

TOKEN = "s3cret-inband"


@pytest.fixture(scope="module")
def guarded() -> Iterator[WorkshopServer]:
    with start_server(port=0, name="inband-browser", token=TOKEN) as server:
        yield server


@pytest.fixture
def relay(guarded) -> Iterator[CloseDroppingRelay]:
    with CloseDroppingRelay(guarded.port) as relay:
        yield relay


def sockets_opened(page: Page) -> list[str]:
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    return opened


def no_retry_for_a_minute(page: Page, opened: list[str], relay: CloseDroppingRelay) -> None:
    page.clock.run_for(60_000)  # every reconnect wait (at most 10 s) would have fired
    assert len(opened) == 1 and relay.upgrades == 1


def test_a_wrong_token_behind_the_proxy_shows_the_form_and_is_not_retried(
    guarded: WorkshopServer, relay: CloseDroppingRelay, page: Page
) -> None:
    opened = sockets_opened(page)
    page.clock.install()
    page.goto(f"http://127.0.0.1:{relay.port}/?name=ada#chat&token=wrong")

    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "closed")
    # The same words as without a proxy, though the close the page saw was 1006.
    expect(status).to_have_text("closed (4001 unauthorized: wrong token)")
    expect(page.locator("#auth-form")).to_be_visible()
    expect(page.locator("#auth-reason")).to_have_text(
        "The server said: 4001 unauthorized: wrong token"
    )
    assert relay.closes == [4001]  # the server's close, which never reached the page
    assert page.evaluate("sessionStorage.getItem('workshop.token')") is None
    no_retry_for_a_minute(page, opened, relay)
    expect(status).to_have_attribute("data-state", "closed")
    assert page.page_errors == []


def test_a_flood_behind_the_proxy_is_reported_as_4029_and_not_retried(
    guarded: WorkshopServer, relay: CloseDroppingRelay, page: Page, monkeypatch
) -> None:
    chat = guarded.lesson("chat")
    # No strike given back: a loaded machine may take a second per message the page sends.
    for name, value in (("burst", 2), ("rate", 0.01), ("strikes", 3), ("strikes_per_second", 0)):
        monkeypatch.setattr(chat, name, value)
    opened = sockets_opened(page)
    page.clock.install()
    page.goto(f"http://127.0.0.1:{relay.port}/?name=flood#chat&token={TOKEN}")
    status = page.locator("#chat-status")
    expect(status).to_have_attribute("data-state", "joined")

    box = page.locator("#chat-input")
    for i in range(5):  # the join and one message pass, 3 are refused, the 5th closes
        box.fill(f"spam {i}")
        box.press("Enter")
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_text("closed (4029 rate limited: rate limited)")
    # The reason in full, as the server wrote it, is on the page too.
    errors = page.locator('#chat-messages li[data-kind="error"]')
    expect(errors.filter(has_text="far over")).to_have_count(1)
    expect(page.locator("#chat-rejoin")).to_have_text("Rejoin")
    assert relay.closes == [4029]
    no_retry_for_a_minute(page, opened, relay)
    assert page.page_errors == []
