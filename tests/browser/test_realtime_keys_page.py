"""Ephemeral keys from a real browser: a page fetches a key from the back-end route and opens
a Realtime session with it, as a page does with the real service (subprotocols ``realtime``
and ``openai-insecure-api-key.<key>``), holding no long-lived token for the session.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from workshop_lib import start_server
from workshop_lib.course import default_lessons

pytestmark = pytest.mark.browser

# What a voice page does: ask its back end for a key, then connect with it.
CONNECT = """async ({token, key}) => {
    if (key === null) {
        const headers = token ? {Authorization: `Bearer ${token}`} : {};
        const answer = await fetch("/api/realtime/client_secret", {method: "POST", headers});
        if (!answer.ok) return {minted: answer.status};
        key = (await answer.json()).value;
    }
    const url = `ws://${location.host}/v1/realtime?model=workshop-local`;
    const ws = new WebSocket(url, ["realtime", `openai-insecure-api-key.${key}`]);
    return await new Promise((resolve) => {
        ws.onmessage = (event) => {
            resolve({protocol: ws.protocol, first: JSON.parse(event.data).type, key});
            ws.close();
        };
        ws.onclose = (event) => resolve({closed: event.code, key});
    });
}"""


@pytest.mark.parametrize("token", [None, "page-test-token"])
def test_a_page_connects_with_a_key_from_the_back_end_route(page: Page, token) -> None:
    lessons = default_lessons(realtime={"delay": 0})
    with start_server(port=0, token=token, lessons=lessons) as server:
        page.goto(f"{server.http_url}/healthz")  # the server's own origin, any page of it
        result = page.evaluate(CONNECT, {"token": token, "key": None})
        assert result["first"] == "session.created", result
        assert result["protocol"] == "realtime" and result["key"].startswith("ek_")
        # A made-up key: the handshake is refused (401), which a browser sees as 1006.
        made_up = page.evaluate(CONNECT, {"token": None, "key": "ek_made-up"})
        assert made_up["closed"] == 1006, made_up
        if token is not None:  # without the token the route mints nothing
            assert page.evaluate(CONNECT, {"token": "wrong", "key": None}) == {"minted": 401}
        assert page.page_errors == []
