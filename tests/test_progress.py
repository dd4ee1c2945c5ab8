"""The room's progress: learners' events in, once each; the instructor's key alone lets them out."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.helpers import wait_for
from workshop_lib import WorkshopServer, start_server
from workshop_lib.course import default_lessons
from workshop_lib.progress.model import Board, parse_report
from workshop_lib.progress.reporter import Reporter
from workshop_lib.progress.server import KEY_PROTOCOL, SUBPROTOCOL, ProgressLesson
from workshop_lib.server.ports import free_port
from workshop_lib.wire.protocol import ProtocolError

TOKEN = "learners-token-for-tests"
KEY = "instructor-key-for-tests"


def progress_server(port: int = 0, **options) -> WorkshopServer:
    return start_server(
        port=port,
        name=f"room-{uuid.uuid4().hex[:8]}",
        token=TOKEN,
        lessons=[*default_lessons(), ProgressLesson(KEY)],
        **options,
    )


@pytest.fixture
def room() -> Iterator[WorkshopServer]:
    with progress_server() as running:
        yield running


def api(server: WorkshopServer, credential: str | None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    request = urllib.request.Request(server.links.url("/api/progress"), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def event(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "progress.report",
        "id": uuid.uuid4().hex,
        "name": "ada",
        "lesson": "echo",
        "exercise": "01.q1",
        "kind": "check",
        "outcome": "failed",
        "attempt": 1,
    }
    return {**base, **fields}


@contextlib.contextmanager
def learner_socket(server: WorkshopServer, name: str = "ada") -> Iterator[ClientConnection]:
    """A kernel's connection to /progress, after its hello."""
    with connect(
        server.links.ws("/progress"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
    ) as websocket:
        websocket.send(json.dumps({"type": "progress.hello", "name": name}))
        welcome = json.loads(websocket.recv(5))
        assert welcome["type"] == "progress.welcome"
        yield websocket


# -- the board --------------------------------------------------------------------------------


def test_a_board_counts_checks_hints_and_solutions_and_drops_repeats():
    board = Board(["01.q1", "01.q2"])
    hint = parse_report(event(kind="hint"))
    assert board.record(hint, now=100)
    assert not board.record(hint, now=101)  # the same id again: a resend
    for attempt, outcome in enumerate(["failed", "error", "passed"], start=1):
        extra = {"error": "ValueError"} if outcome == "error" else {}
        board.record(parse_report(event(outcome=outcome, attempt=attempt, **extra)), now=102)
    row = board.learner("ada", now=103)["exercises"]["01.q1"]
    assert (row["status"], row["attempts"], row["failures"], row["hint"], row["solution"]) == (
        "passed",
        3,
        2,
        True,
        False,
    )
    assert board.passed() == {"01.q1": 1, "01.q2": 0}
    assert board.repeats == 1


def test_stuck_is_three_failures_or_ten_minutes_without_a_pass():
    board = Board(["01.q1"])
    for attempt in (1, 2):
        board.record(parse_report(event(attempt=attempt)), now=0)
    assert board.stuck(now=1) == []
    board.record(parse_report(event(attempt=3)), now=1)
    assert [s["name"] for s in board.stuck(now=2)] == ["ada"]
    board.record(parse_report(event(name="bob", kind="hint")), now=0)
    assert [s["name"] for s in board.stuck(now=599)] == ["ada"]
    assert [s["name"] for s in board.stuck(now=600)] == ["ada", "bob"]
    board.record(parse_report(event(name="bob", outcome="passed")), now=601)
    assert [s["name"] for s in board.stuck(now=700)] == ["ada"]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "code"},
        {"outcome": "maybe"},
        {"exercise": "q1"},
        {"name": ""},
        {"name": "a\nb"},
        {"name": "x" * 33},
        {"id": "short"},
        {"attempt": True},
        {"attempt": 0},
        {"outcome": "error", "error": "ValueError('secret')"},
        {"lesson": "../echo"},
    ],
)
def test_a_bad_report_is_refused_saying_which_field(fields):
    with pytest.raises(ProtocolError) as refused:
        parse_report(event(**fields))
    assert refused.value.code == "bad_value"


def test_the_grid_has_every_exercise_of_the_course():
    exercises = ProgressLesson().board.exercises
    assert {"01.q1", "01.q2", "02.q3", "03.q3", "04.q2", "05.q2", "06.q2", "07.q3"} <= set(
        exercises
    )
    assert all(len(e) == 5 and e[2] == "." for e in exercises)


# -- the server -------------------------------------------------------------------------------


def test_each_event_is_acknowledged_and_a_repeat_counts_once(room):
    with learner_socket(room) as websocket:
        sent = event()
        for _ in range(2):
            websocket.send(json.dumps(sent))
        acks = [json.loads(websocket.recv(5)) for _ in range(2)]
    assert [(a["type"], a["id"], a["duplicate"]) for a in acks] == [
        ("progress.ack", sent["id"], False),
        ("progress.ack", sent["id"], True),
    ]
    status, board = api(room, KEY)
    assert status == 200
    [ada] = board["learners"]
    assert ada["exercises"]["01.q1"]["attempts"] == 1


def test_bad_input_gets_an_error_event_and_the_connection_stays(room):
    with learner_socket(room) as websocket:
        for bad in ("not json", json.dumps(event(kind="code")), json.dumps({"type": "x"})):
            websocket.send(bad)
            answer = json.loads(websocket.recv(5))
            assert answer["type"] == "error" and answer["code"] in (
                "bad_json",
                "bad_value",
                "unknown_type",
            )
        websocket.send(json.dumps(event()))
        assert json.loads(websocket.recv(5))["type"] == "progress.ack"


def test_the_instructors_key_opens_the_progress_the_learners_token_does_not(room):
    status, board = api(room, KEY)
    assert status == 200 and "01.q1" in board["exercises"]
    status, said = api(room, TOKEN)
    assert status == 403 and "instructor" in said
    status, said = api(room, None)
    assert status == 401
    status, said = api(room, "a-wrong-key-for-tests")
    assert status == 401
    # The same on the instructor's live socket.
    for headers, code in (({"Authorization": f"Bearer {TOKEN}"}, 403), ({}, 401)):
        with pytest.raises(InvalidStatus) as refused:
            connect(room.links.ws("/progress/watch"), additional_headers=headers).close()
        assert refused.value.response.status_code == code
    with connect(
        room.links.ws("/progress/watch"), additional_headers={"Authorization": f"Bearer {KEY}"}
    ) as watch:
        assert json.loads(watch.recv(5))["type"] == "progress.snapshot"
    # A browser sends the key as a subprotocol; the server selects the course's own.
    with connect(
        room.links.ws("/progress/watch"), subprotocols=[SUBPROTOCOL, KEY_PROTOCOL + KEY]
    ) as watch:
        assert watch.subprotocol == SUBPROTOCOL
        assert json.loads(watch.recv(5))["type"] == "progress.snapshot"


def test_the_public_room_stats_have_counts_and_no_names(room):
    with learner_socket(room, name="zelda-the-learner") as websocket:
        websocket.send(json.dumps(event(name="zelda-the-learner")))
        websocket.recv(5)
        with urllib.request.urlopen(room.links.url("/api/stats"), timeout=5) as response:
            text = response.read().decode()
    assert json.loads(text)["progress"] == {"learners": 1, "online": 1, "events": 1}
    assert "zelda" not in text


def test_a_watcher_sees_each_change_as_it_happens(room):
    with connect(
        room.links.ws("/progress/watch"), additional_headers={"Authorization": f"Bearer {KEY}"}
    ) as watch:
        assert json.loads(watch.recv(5))["learners"] == []
        with learner_socket(room) as websocket:
            hello = json.loads(watch.recv(5))
            assert hello["learner"]["name"] == "ada" and hello["learner"]["online"]
            websocket.send(json.dumps(event(outcome="passed")))
            started = time.monotonic()
            update = json.loads(watch.recv(5))
            assert time.monotonic() - started < 1.0
            assert update["learner"]["exercises"]["01.q1"]["status"] == "passed"
            assert update["passed"]["01.q1"] == 1
        gone = json.loads(watch.recv(5))
        assert gone["learner"]["online"] is False


# -- the learner's reporter -----------------------------------------------------------------


def test_a_report_never_waits_and_goes_out_when_the_room_is_back():
    port = free_port()
    reporter = Reporter(f"http://127.0.0.1:{port}", TOKEN)
    try:
        started = time.perf_counter()
        sent = reporter.report("echo", "01.q1", "check", "failed")
        assert time.perf_counter() - started < 0.05  # the room is down: nothing waited on it
        assert reporter.pending == 1
        with progress_server(port) as server:
            wait_for(lambda: reporter.pending == 0, timeout=15)  # backoff: ~0.5, 1, 2, 4 s
            status, board = api(server, KEY)
            assert status == 200
            [row] = board["learners"]
            assert row["exercises"]["01.q1"]["attempts"] == 1
            assert sent["id"]  # the event the server counted is the one queued
    finally:
        reporter.stop()


def test_a_restarted_room_gets_the_sessions_events_again_and_counts_them_once():
    server = progress_server()
    port = server.port
    reporter = Reporter(server.http_url, TOKEN)
    try:
        reporter.report("echo", "01.q1", "hint")
        reporter.report("echo", "01.q1", "check", "passed")
        wait_for(lambda: reporter.pending == 0, timeout=10)
        server.stop()
        reporter.report("echo", "01.q2", "check", "error", "KeyError")  # while it is down
        server = progress_server(port)
        wait_for(lambda: reporter.pending == 0 and reporter.connected.is_set(), timeout=15)

        def rows() -> dict:
            return api(server, KEY)[1]["learners"][0]["exercises"]

        wait_for(lambda: "01.q1" in rows(), timeout=5)
        mine = rows()
        assert mine["01.q1"]["status"] == "passed" and mine["01.q1"]["hint"]
        assert mine["01.q1"]["attempts"] == 1
        assert (mine["01.q2"]["status"], mine["01.q2"]["error"]) == ("failed", "KeyError")
    finally:
        reporter.stop()
        server.stop()


def test_an_announcement_reaches_a_reporter_once(room):
    reporter = Reporter(room.http_url, TOKEN)
    try:
        wait_for(reporter.connected.is_set, timeout=10)
        assert reporter.take_announcement() is None
        with connect(
            room.links.ws("/progress/watch"),
            additional_headers={"Authorization": f"Bearer {KEY}"},
        ) as watch:
            watch.recv(5)
            watch.send(json.dumps({"type": "progress.announce", "text": "move on to §6"}))
            wait_for(lambda: reporter._announcement is not None, timeout=5)
        assert reporter.take_announcement() == "move on to §6"
        assert reporter.take_announcement() is None  # once
    finally:
        reporter.stop()


def test_the_setup_check_says_whether_checks_report_and_how_to_turn_it_off():
    from workshop_lib.notebook.setup_check import check_progress

    assert check_progress({}) == []  # alone: nothing is sent, no row
    [on] = check_progress({"WORKSHOP_SERVER": "http://10.0.0.1:8765"})
    assert on.status == "ok" and on.detail.startswith("on:")
    assert "never your code" in on.detail and "WORKSHOP_PROGRESS=off" in on.detail
    [off] = check_progress({"WORKSHOP_SERVER": "http://10.0.0.1:8765", "WORKSHOP_PROGRESS": "off"})
    assert off.detail.startswith("off")


def test_with_progress_off_a_check_sends_nothing(room, monkeypatch):
    from workshop_lib.checks.echo import q1
    from workshop_lib.progress import reporter

    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.setenv("WORKSHOP_TOKEN", TOKEN)
    monkeypatch.setenv("WORKSHOP_PROGRESS", "off")
    assert reporter.current() is None
    q1.hint()
    monkeypatch.delenv("WORKSHOP_PROGRESS")
    joined = reporter.current()
    assert joined is not None
    wait_for(joined.connected.is_set, timeout=10)
    q1.solution()
    wait_for(lambda: joined.pending == 0, timeout=10)
    [row] = api(room, KEY)[1]["learners"]
    assert (row["exercises"]["01.q1"]["hint"], row["exercises"]["01.q1"]["solution"]) == (
        False,
        True,
    )
    joined.stop()


def test_a_flood_of_made_up_names_stops_at_the_boards_limit(monkeypatch):
    from workshop_lib.progress import model

    monkeypatch.setattr(model, "MAX_LEARNERS", 3)
    board = Board(["01.q1"])
    for n in range(3):
        board.record(parse_report(event(name=f"name-{n}")), now=0)
    with pytest.raises(ProtocolError) as refused:
        board.record(parse_report(event(name="one-too-many")), now=0)
    assert refused.value.code == "room_full"
    with pytest.raises(ProtocolError):
        board.connected("one-too-many", now=0)
    assert len(board.learners) == 3 and "one-too-many" not in board.online
    assert board.record(parse_report(event(name="name-0")), now=1)  # those there go on


def test_a_room_that_hangs_costs_a_check_nothing(monkeypatch):
    """A room that takes the TCP connection and never answers (the worst case: no refusal
    to fail fast on) adds nothing to a check: the reporter's thread waits, not the check."""
    from workshop_lib.checks.echo import q1
    from workshop_lib.progress import reporter

    async def shout(websocket):
        async for message in websocket:
            await websocket.send(message.upper() + "!")

    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)  # accepts into the backlog, never reads, never answers
        monkeypatch.setenv("WORKSHOP_SERVER", f"http://127.0.0.1:{hanging.getsockname()[1]}")
        monkeypatch.setenv("WORKSHOP_TOKEN", TOKEN)
        assert q1.check(shout)  # warm: imports, the reporter's thread
        down, alone = [], []
        for _ in range(3):
            monkeypatch.delenv("WORKSHOP_PROGRESS", raising=False)
            started = time.perf_counter()
            assert q1.check(shout)
            down.append(time.perf_counter() - started)
            monkeypatch.setenv("WORKSHOP_PROGRESS", "off")
            started = time.perf_counter()
            assert q1.check(shout)
            alone.append(time.perf_counter() - started)
        joined = reporter._current
        assert joined is not None and joined.pending == 4 and not joined.connected.is_set()
        joined.stop()
    assert max(down) < 2.0  # far below the reporter's 5 s open timeout, which it never waits
    assert sorted(down)[1] < sorted(alone)[1] * 1.5 + 0.1, (down, alone)
