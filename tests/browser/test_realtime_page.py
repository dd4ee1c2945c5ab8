"""The browser client's Realtime page in real Chromium: the subprotocol login, the stream,
cancel, and a token server (the page asks for the token, a wrong one is refused).

Tests ask for the server before ``page``, so the screenshot is taken while it still runs.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from workshop_lib import start_server
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.server import RealtimeLesson

pytestmark = pytest.mark.browser

STATUS = "#realtime-status"


def received_types(page: Page) -> list[str]:
    return page.locator("#realtime-events li.received").evaluate_all(
        "items => items.map(li => li.dataset.type)"
    )


def ask(page: Page, text: str) -> None:
    page.locator("#realtime-text").fill(text)
    page.locator("#realtime-text").press("Enter")  # Enter sends, as on the other pages


def test_the_page_logs_in_with_subprotocols_and_streams_an_answer(page: Page) -> None:
    with start_server(port=0, lessons=[RealtimeLesson(delay=0.01)]) as server:
        handshakes: list[dict[str, str]] = []
        page.on(
            "websocket",
            lambda ws: handshakes.append({"url": ws.url}),
        )
        page.goto(f"{server.http_url}/#realtime")
        expect(page.locator(STATUS)).to_contain_text("connected: session sess_")
        ask(page, "hello from chromium")
        expect(page.locator(STATUS)).to_have_text("response completed")
        expected = "".join(echo_responder("hello from chromium"))
        expect(page.locator("#realtime-answer")).to_have_text(expected)
        types = received_types(page)
        assert types[0] == "session.created"
        assert types.count("response.output_text.delta") == len(list(echo_responder("x y z")))
        assert types[-2:] == ["response.done", "rate_limits.updated"]
        sent = page.locator("#realtime-events li.sent").evaluate_all(
            "items => items.map(li => li.dataset.type)"
        )
        # Text asked for first: the service, and this server, answer in audio by default.
        assert sent == ["session.update", "conversation.item.create", "response.create"]
        assert types[1] == "session.updated"
        assert handshakes and handshakes[0]["url"].endswith("/v1/realtime?model=workshop-local")
        assert server.lesson("realtime").counts.responses == 1
        assert page.page_errors == []


def test_cancel_stops_the_answer_mid_stream(page: Page) -> None:
    with start_server(port=0, lessons=[RealtimeLesson(delay=0.1)]) as server:
        page.goto(f"{server.http_url}/#realtime")
        expect(page.locator(STATUS)).to_contain_text("connected")
        ask(page, " ".join(["word"] * 100))  # about 10 s of deltas
        cancel = page.locator("#realtime-cancel")
        expect(cancel).to_be_enabled()
        expect(page.locator("#realtime-answer")).to_contain_text("word word")
        cancel.click()
        expect(page.locator(STATUS)).to_have_text("response cancelled")
        counts = server.lesson("realtime").counts
        assert counts.cancelled == 1 and counts.deltas < 100
        assert page.locator("#realtime-events li.sent").last.get_attribute("data-type") == (
            "response.cancel"
        )


def test_a_token_server_asks_for_the_token_and_refuses_a_wrong_one(page: Page) -> None:
    token = "realtime-page-token"
    with start_server(port=0, token=token, lessons=[RealtimeLesson(delay=0)]) as server:
        page.goto(f"{server.http_url}/#realtime")
        form = page.locator("#auth-form")
        expect(form).to_be_visible()
        page.locator("#auth-token").fill("not-it")
        page.locator("#auth-submit").click()
        expect(page.locator(STATUS)).to_contain_text("could not connect")
        expect(page.locator("#auth-reason")).to_have_text("The server refused the token.")
        page.locator("#auth-token").fill(token)
        page.locator("#auth-submit").click()
        expect(page.locator(STATUS)).to_contain_text("connected: session")
        ask(page, "with a token")
        expect(page.locator(STATUS)).to_have_text("response completed")
        # The token never rode in the URL (it went in a subprotocol).
        stats = json.loads(page.evaluate("fetch('api/stats').then(r => r.text())"))
        assert stats["realtime"]["responses"] == 1
        assert token not in page.url
