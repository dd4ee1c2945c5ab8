"""The instructor's room page (``/#room&key=KEY``) in Chromium: the live grid of learners and
exercises, who is stuck and online, and an announcement; without the key, counts only."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from tests.conftest import ARTIFACTS
from tests.helpers import wait_for
from tests.progress_room import announce
from workshop_lib import WorkshopServer, start_server
from workshop_lib.course import default_lessons
from workshop_lib.progress.server import ProgressLesson

pytestmark = pytest.mark.browser

TOKEN = "learners-token-for-tests"
KEY = "instructor-key-for-tests"
SNEAKY = "<img src=x onerror=alert(1)>"  # a name, 28 characters of it


@pytest.fixture
def room() -> Iterator[WorkshopServer]:
    with start_server(
        port=0,
        name=f"room-{uuid.uuid4().hex[:8]}",
        token=TOKEN,
        lessons=[*default_lessons(), ProgressLesson(KEY, exercises=["01.q1", "01.q2", "02.q1"])],
    ) as running:
        yield running


class Learner:
    """A kernel's connection to /progress, speaking for ``name``."""

    def __init__(self, server: WorkshopServer, name: str) -> None:
        self.name = name
        self.attempts: dict[str, int] = {}
        self.websocket = connect(
            server.links.ws("/progress"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
        ).__enter__()
        self.websocket.send(json.dumps({"type": "progress.hello", "name": name}))
        assert json.loads(self.websocket.recv(5))["type"] == "progress.welcome"

    def send(self, exercise: str, kind: str = "check", outcome: str = "failed") -> None:
        event = {
            "type": "progress.report",
            "id": uuid.uuid4().hex,
            "name": self.name,
            "lesson": "echo",
            "exercise": exercise,
            "kind": kind,
        }
        if kind == "check":
            self.attempts[exercise] = self.attempts.get(exercise, 0) + 1
            event |= {"outcome": outcome, "attempt": self.attempts[exercise]}
        self.websocket.send(json.dumps(event))
        while json.loads(self.websocket.recv(5))["type"] != "progress.ack":
            pass

    def close(self) -> None:
        self.websocket.close()


def cell(page: Page, learner: str, exercise: str):
    return page.locator(
        f'#progress-grid tr[data-learner="{learner}"] td[data-exercise="{exercise}"]'
    )


def test_the_grid_shows_each_learner_live_and_names_as_text(room: WorkshopServer, page: Page):
    ada, bob, sneaky = Learner(room, "ada"), Learner(room, "bob"), Learner(room, SNEAKY)
    try:
        ada.send("01.q1", "hint")
        ada.send("01.q1", outcome="passed")
        page.goto(f"{room.http_url}/#room&key={KEY}")
        # The key leaves the address bar at once.
        expect(page).to_have_url(f"{room.http_url}/#room")
        expect(page.locator("#progress-status")).to_have_attribute("data-state", "open")
        expect(cell(page, "ada", "01.q1")).to_have_attribute("data-status", "passed")
        expect(cell(page, "ada", "01.q1")).to_have_attribute("data-hint", "true")
        expect(cell(page, "bob", "01.q1")).to_have_attribute("data-status", "none")

        # Updates arrive over the socket, within a second of the event.
        for _ in range(3):
            started = time.monotonic()
            bob.send("01.q1")
            expect(cell(page, "bob", "01.q1")).to_have_text(f"✘ {bob.attempts['01.q1']}")
            assert time.monotonic() - started < 1.0
        expect(page.locator("#progress-stuck li")).to_have_text(["bob on 01.q1: 3 failed checks"])
        sneaky.send("02.q1", "solution")
        expect(cell(page, SNEAKY, "02.q1")).to_have_text("· s")
        expect(page.locator('#progress-grid tfoot td[data-exercise="01.q1"]')).to_have_text("1")
        # Sorted by progress: ada (one passed) first; by name on request.
        expect(page.locator("#progress-grid tbody th")).to_have_text(["ada", SNEAKY, "bob"])
        page.click("#progress-sort")
        expect(page.locator("#progress-grid tbody th")).to_have_text([SNEAKY, "ada", "bob"])
        expect(page.locator("#progress-online li")).to_have_count(3)
        sneaky.close()
        expect(page.locator("#progress-online li")).to_have_text(["ada", "bob"])
        assert page.locator("#progress-grid img").count() == 0  # the name was text
        page.screenshot(path=str(ARTIFACTS / "progress-grid.png"), full_page=True)
        assert page.page_errors == []
    finally:
        ada.close()
        bob.close()
        sneaky.close()


def test_an_announcement_reaches_learners_and_the_page_says_what_shows(room, page: Page):
    learner = Learner(room, "ada")
    try:
        page.goto(f"{room.http_url}/#room&key={KEY}")
        expect(page.locator("#progress-status")).to_have_attribute("data-state", "open")
        page.fill("#announce-text", "break until 11:00")
        page.click("#announce-send")
        expect(page.locator("#announce-current")).to_have_text("Showing: “break until 11:00”")
        while (event := json.loads(learner.websocket.recv(5)))["type"] != "progress.announcement":
            pass
        assert event["announcement"]["text"] == "break until 11:00"
        page.click("#announce-clear")
        expect(page.locator("#announce-current")).to_have_text("None showing.")
    finally:
        learner.close()


def test_without_the_key_the_room_page_shows_counts_only(room: WorkshopServer, page: Page):
    learner = Learner(room, "ada")
    try:
        learner.send("01.q1", outcome="passed")
        page.goto(f"{room.http_url}/#room")
        expect(page.locator("#room-status")).to_have_attribute("data-state", "open")
        expect(page.locator("#progress-grid")).to_have_count(0)
        assert "ada" not in page.content()
    finally:
        learner.close()


@pytest.mark.parametrize(
    ("key", "said"),
    [("not-the-key-at-all", "wrong key"), (TOKEN, "the learners' token, not the instructor's")],
    ids=["wrong-key", "learners-token"],
)
def test_a_wrong_key_shows_no_one_and_says_so(room: WorkshopServer, page: Page, key, said):
    Learner(room, "ada").close()
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    page.clock.install()
    page.goto(f"{room.http_url}/#room&key={key}")
    status = page.locator("#progress-status")
    expect(status).to_have_attribute("data-state", "refused")
    expect(status).to_contain_text(said)
    expect(page.locator("#progress-grid tbody tr")).to_have_count(0)
    page.clock.run_for(60_000)  # longer than any reconnect wait: a refused key is not retried
    assert [url for url in opened if url.endswith("/progress/watch")] == [
        room.links.ws("/progress/watch")
    ]
    assert page.page_errors == []


def test_every_open_page_shows_the_announcement(room: WorkshopServer, page: Page):
    page.goto(f"{room.http_url}/#chat&token={TOKEN}")
    banner = page.locator("#announcement")
    wait_for(lambda: room.lesson("progress").listeners, timeout=10)  # the page listens
    expect(banner).to_be_hidden()
    announce(room.links.ws("/progress/watch"), "move on to §6 <b>now</b>")
    expect(banner).to_have_text("From your instructor: move on to §6 <b>now</b>")
    page.goto(f"{room.http_url}/#ball")  # another page of the same tab: still shown
    expect(banner).to_have_text("From your instructor: move on to §6 <b>now</b>")
    page.screenshot(path=str(ARTIFACTS / "announcement-banner.png"))
    announce(room.links.ws("/progress/watch"), "")
    expect(banner).to_be_hidden()
    assert page.page_errors == []


def test_a_server_without_the_rooms_progress_opens_no_announcement_socket(server, page: Page):
    page.goto(f"{server.http_url}/#echo")
    expect(page.locator("#echo-status")).to_be_visible()
    page.wait_for_timeout(500)  # the health check and the socket it would open
    assert server.app.served.get("/progress/announcements") is None
    expect(page.locator("#announcement")).to_have_count(0)


def test_two_kernels_on_the_instructors_page_and_no_code_on_it(page: Page):
    """Real kernels joined to a real `serve -v`: the page shows both learners' statuses; a
    marker in an answer is on no page, and the key the page sends is in no log record."""
    from tests.kernel import assert_ok
    from tests.progress_room import KEY as ROOM_KEY
    from tests.progress_room import Room
    from tests.test_progress_kernels import MARKER, RIGHT, WRONG, learner

    room = Room().start()
    try:
        with learner(room.url, "ada") as ada, learner(room.url, "bob") as bob:
            for kernel in (ada, bob):
                assert_ok(kernel.run("from workshop_lib.checks.echo import q1"))
            page.goto(f"{room.url}/#room&key={ROOM_KEY}")
            expect(page.locator("#progress-status")).to_have_attribute("data-state", "open")
            assert_ok(ada.run("q1.hint()"))
            assert_ok(ada.run(RIGHT))
            assert "Correct" in ada.run("q1.check(shout)").result
            assert_ok(bob.run(WRONG))
            assert MARKER in bob.run("q1.check(shout)").result
            expect(cell(page, "ada", "01.q1")).to_have_attribute("data-status", "passed")
            expect(cell(page, "ada", "01.q1")).to_have_text("✔ h")
            expect(cell(page, "bob", "01.q1")).to_have_text("✘ 1")
            expect(page.locator("#progress-online li")).to_have_text(["ada", "bob"])
            page.screenshot(path=str(ARTIFACTS / "progress-two-kernels.png"), full_page=True)
            assert MARKER not in page.content()
        expect(page.locator("#progress-online li")).to_have_text(["nobody yet"])
    finally:
        room.stop()
    log = room.log()
    assert "workshop-key.[redacted]" in log  # the page's handshake was logged (-v)...
    assert ROOM_KEY not in log and MARKER not in log  # ...without the key
