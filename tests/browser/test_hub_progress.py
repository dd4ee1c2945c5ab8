"""The instructor's room page behind a hub: only JupyterLab's port reachable.

The room's server is ``python -m workshop_lib serve --token ... --instructor-key ...`` run as
in a terminal of the instructor's hub server (``JUPYTERHUB_SERVICE_PREFIX`` set), so the
instructor link it prints goes through jupyter-server-proxy; the browser (test_hub.py's
fenced context: every port but JupyterLab's refused) opens that link and nothing else. Two
learners report with real ``Reporter``s (what a joined kernel runs); the grid, the
announcement (to a Reporter and to a learner's page through the same proxy), a wrong key and
``/api/progress`` are all checked through the proxy.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser import test_hub
from tests.browser.jupyterlab import JupyterLab, screenshot
from tests.browser.test_hub import HUB_HOST, PREFIX, _as_the_browser_sees_it, _login_cookie
from tests.helpers import wait_for
from tests.progress_room import KEY, TOKEN, Room
from workshop_lib.progress.reporter import Reporter

pytestmark = pytest.mark.browser

# test_hub.py's fixtures: a JupyterLab under /user/learner/ (this module's own), its Chromium,
# and pages fenced to its port.
hub, hub_browser, hub_page = test_hub.hub, test_hub.hub_browser, test_hub.hub_page

TIMEOUT = 30_000  # ms: a busy machine, a proxy and a subprocess between the page and the room


@pytest.fixture
def room(monkeypatch: pytest.MonkeyPatch) -> Iterator[Room]:
    """``serve`` as started in a terminal of the hub's JupyterLab: it sees the hub's prefix."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    running = Room().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def learners(room: Room) -> Iterator[dict[str, Reporter]]:
    """ada and bob, as their joined kernels report (to the room's address, not the proxy)."""
    reporters = {name: Reporter(room.url, TOKEN, name=name) for name in ("ada", "bob")}
    try:
        for reporter in reporters.values():
            assert reporter.connected.wait(20), "a learner's reporter never connected"
        yield reporters
    finally:
        for reporter in reporters.values():
            reporter.stop()


def _printed_link(room: Room, label: str) -> str:
    match = re.search(rf"^\s+{label}:\s+(\S+)", room.banner(), re.MULTILINE)
    assert match, room.banner()
    return match.group(1)


def _watch_errors(page: Page) -> Page:
    page.page_errors = []
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    return page


def _cell(page: Page, learner: str, exercise: str):
    return page.locator(
        f'#progress-grid tr[data-learner="{learner}"] td[data-exercise="{exercise}"]'
    )


TRANSPARENT = "rgba(0, 0, 0, 0)"


def _background(locator) -> str:
    return locator.evaluate("(node) => getComputedStyle(node).backgroundColor")


def _get(url: str, cookie: str, credential: str | None) -> tuple[int, str]:
    """``GET url`` as a logged-in browser would send it, with ``Bearer credential``."""
    headers = {"Cookie": cookie}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_the_instructors_room_through_a_hubs_proxy(
    hub_page, hub: JupyterLab, room: Room, learners: dict[str, Reporter]
) -> None:
    page = hub_page
    ada, bob = learners["ada"], learners["bob"]
    origin = f"http://{HUB_HOST}:{hub.port}"
    proxied = f"{_as_the_browser_sees_it(hub).base_url}proxy/{room.port}/"
    page.goto(_as_the_browser_sees_it(hub).url("api/status"))  # logged in, as a hub would be

    # The link `serve` printed, opened as it reads: relative to the hub's host.
    link = _printed_link(room, "Instructor page")
    assert link.startswith(f"{PREFIX}proxy/{room.port}/#room&key="), link
    page.goto(origin + link)
    expect(page).to_have_url(f"{proxied}#room")  # the key left the address bar
    status = page.locator("#progress-status")
    expect(status).to_have_attribute("data-state", "open", timeout=TIMEOUT)
    expect(page.locator("#progress-online li")).to_have_text(["ada", "bob"], timeout=TIMEOUT)

    # ada passes after a hint, bob fails: each change reaches the proxied grid as it happens.
    ada.report("echo", "01.q1", "hint")
    expect(_cell(page, "ada", "01.q1")).to_have_text("· h", timeout=TIMEOUT)
    bob.report("echo", "01.q1", "check", "failed")
    expect(_cell(page, "bob", "01.q1")).to_have_text("✘ 1", timeout=TIMEOUT)
    ada.report("echo", "01.q1", "check", "passed")
    expect(_cell(page, "ada", "01.q1")).to_have_attribute("data-status", "passed", timeout=TIMEOUT)
    expect(_cell(page, "ada", "01.q1")).to_have_text("✔ h")
    bob.report("echo", "01.q1", "check", "failed")
    expect(_cell(page, "bob", "01.q1")).to_have_text("✘ 2", timeout=TIMEOUT)
    expect(_cell(page, "bob", "01.q1")).to_have_attribute("data-status", "failed")
    expect(page.locator('#progress-grid tfoot td[data-exercise="01.q1"]')).to_have_text("1")
    expect(page.locator("#progress-grid tbody th")).to_have_text(["ada", "bob"])
    # Drawn as the style sheet says: a passed cell and a failed one in colours of their own.
    passed, failed, untouched = (
        _background(_cell(page, name, exercise))
        for name, exercise in (("ada", "01.q1"), ("bob", "01.q1"), ("ada", "01.q2"))
    )
    assert len({passed, failed, untouched}) == 3, (passed, failed, untouched)
    screenshot(page, "hub-progress-grid")

    # A learner's page through the same proxy, listening for announcements.
    learner = _watch_errors(page.context.new_page())
    heard: list[str] = []  # what the page's announcement socket received

    def listen(socket) -> None:
        if socket.url.endswith("/progress/announcements"):
            socket.on("framereceived", lambda frame: heard.append(str(frame)))

    learner.on("websocket", listen)
    learner.goto(f"{proxied}?name=carol#chat&token={TOKEN}")
    joined = learner.locator("#chat-status")
    expect(joined).to_have_attribute("data-state", "joined", timeout=TIMEOUT)
    wait_for(lambda: heard, timeout=TIMEOUT / 1000)  # the banner's socket has the current one
    banner = learner.locator("#announcement")
    expect(banner).to_be_hidden()

    # The instructor types an announcement on the proxied page.
    page.fill("#announce-text", "move on to §6")
    page.click("#announce-send")
    expect(page.locator("#announce-current")).to_have_text(
        "Showing: “move on to §6”", timeout=TIMEOUT
    )
    expect(banner).to_have_text("From your instructor: move on to §6", timeout=TIMEOUT)
    expect(banner).to_have_css("font-weight", "700")  # a banner, not a stray line of text
    assert _background(banner) != TRANSPARENT
    wait_for(lambda: ada.take_announcement() == "move on to §6", timeout=TIMEOUT / 1000)
    screenshot(learner, "hub-progress-announcement")
    assert learner.page_errors == []

    # /api/progress through the proxy, with the login cookie a browser sends: the learners'
    # token is refused, the key opens it.
    cookie = _login_cookie(hub)
    api = f"{hub.base_url}proxy/{room.port}/api/progress"
    code, said = _get(api, cookie, TOKEN)
    assert code == 403 and "instructor" in said, (code, said)
    assert _get(api, cookie, None)[0] == 401
    code, body = _get(api, cookie, KEY)
    assert code == 200, (code, body)
    board = {row["name"]: row["exercises"] for row in json.loads(body)["learners"]}
    assert board["ada"]["01.q1"]["status"] == "passed" and board["ada"]["01.q1"]["hint"]
    assert board["bob"]["01.q1"]["status"] == "failed"
    assert board["bob"]["01.q1"]["attempts"] == 2

    # A wrong key through the proxy: the page says so, and shows no one.
    wrong = _watch_errors(page.context.new_page())
    watches: list[str] = []
    wrong.on("websocket", lambda ws: ws.url.endswith("/progress/watch") and watches.append(ws.url))
    wrong.clock.install()
    wrong.goto(f"{proxied}#room&key=not-the-key-at-all")
    wrong_status = wrong.locator("#progress-status")
    expect(wrong_status).to_have_attribute("data-state", "refused", timeout=TIMEOUT)
    expect(wrong_status).to_contain_text("wrong key")
    expect(wrong.locator("#progress-grid tbody tr")).to_have_count(0)
    screenshot(wrong, "hub-progress-wrong-key")
    wrong.clock.run_for(60_000)  # longer than any reconnect wait: not retried
    assert watches == [f"ws://{HUB_HOST}:{hub.port}{PREFIX}proxy/{room.port}/progress/watch"]
    assert wrong.page_errors == []

    assert page.fence.refused == []
    assert page.page_errors == []
