"""Two learners' real kernels joined to the room's `serve`: their checks reach the instructor,
their code does not, and a room that is down costs a check nothing."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.kernel import NOTEBOOKS, Kernel, assert_ok
from tests.progress_room import KEY, TOKEN, Room, announce

MARKER = "MARKER-planted-7f3a9c"

# A wrong answer to 01's q1 that carries the marker in its code and in what it sends.
WRONG = f'''
async def shout(websocket):
    async for message in websocket:
        await websocket.send("{MARKER} " + message)
'''
# 01's q2, whose answer the check calls itself: an exception the learner's code raises.
RAISES = f'''
async def measure_round_trips(*args, **kwargs):
    raise ValueError("{MARKER}")
'''
RIGHT = """
async def shout(websocket):
    async for message in websocket:
        await websocket.send(message.upper() + "!")
"""


@pytest.fixture
def room() -> Iterator[Room]:
    room = Room().start()
    try:
        yield room
    finally:
        room.stop()


def learner(room_url: str, name: str, **env: str) -> Kernel:
    return Kernel(
        NOTEBOOKS,
        env={
            "WORKSHOP_SERVER": room_url,
            "WORKSHOP_TOKEN": TOKEN,
            "WORKSHOP_NAME": name,
            "WORKSHOP_PROGRESS": None,
            **env,
        },
    )


def test_two_learners_checks_reach_the_instructor_and_no_code_does(room):
    with learner(room.url, "ada") as ada, learner(room.url, "bob") as bob:
        for kernel in (ada, bob):
            assert_ok(kernel.run("from workshop_lib.checks.echo import q1, q2"))
        # Importing the checks connects: both are online before any check.
        wait_for(lambda: room.row("ada").get("online") and room.row("bob").get("online"), 20)

        assert_ok(ada.run("q1.hint()"))
        assert_ok(ada.run(RIGHT))
        assert "Correct" in ada.run("q1.check(shout)").result
        assert_ok(bob.run(WRONG))
        assert MARKER in bob.run("q1.check(shout)").result  # the learner sees it...
        assert_ok(bob.run(RAISES))
        assert "ValueError" in bob.run("q2.check(measure_round_trips)").result

        wait_for(lambda: "01.q2" in room.row("bob").get("exercises", {}))
        wait_for(lambda: room.row("ada").get("exercises", {}).get("01.q1"))
        board = room.progress()
        ada_row = room.row("ada")["exercises"]["01.q1"]
        bob_row = room.row("bob")["exercises"]["01.q1"]
        bob_q2 = room.row("bob")["exercises"]["01.q2"]
        assert (ada_row["status"], ada_row["attempts"], ada_row["hint"]) == ("passed", 1, True)
        assert (bob_row["status"], bob_row["attempts"], bob_row["hint"]) == ("failed", 1, False)
        assert (bob_q2["status"], bob_q2["error"]) == ("failed", "ValueError")
        assert board["passed"]["01.q1"] == 1

        # ...and the room never does: not the API, not the public stats, not the log.
        for path in ("/api/progress", "/api/stats", "/healthz"):
            status, body = room.get(path)
            assert status == 200 and MARKER not in body, path
        assert MARKER not in room.log()
        # The learners' token does not open the instructor's view.
        assert room.get("/api/progress", TOKEN)[0] == 403
        assert room.get("/api/progress", None)[0] == 401
    assert room.row("ada").get("online") is False or room.row("ada") == {}
    # Neither secret is in any log record of the room (serve -v logs every handshake),
    # while the banner gives both to the instructor.
    assert "Authorization: [redacted]" in room.log()  # the handshakes were logged
    assert KEY not in room.log() and TOKEN not in room.log()
    assert f"#room&key={KEY}" in room.banner() and f"Token:               {TOKEN}" in room.banner()


def test_a_room_that_is_down_costs_a_check_nothing_and_hears_of_it_later():
    room = Room()  # not started: nothing listens on its port
    with learner(room.url, "carol") as carol:
        assert_ok(carol.run("from workshop_lib.checks.echo import q1\nimport os, time"))
        assert_ok(carol.run(RIGHT))
        assert_ok(carol.run("q1.check(shout)"))  # warm: the first check loads what it needs
        timed = carol.run(
            "def timed(n=5):\n"
            "    took = []\n"
            "    for _ in range(n):\n"
            "        started = time.perf_counter(); q1.check(shout)\n"
            "        took.append(time.perf_counter() - started)\n"
            "    return took\n"
            "down, alone = [], []\n"
            "for _ in range(3):\n"
            "    os.environ.pop('WORKSHOP_PROGRESS', None); down += timed(1)\n"
            "    os.environ['WORKSHOP_PROGRESS'] = 'off'; alone += timed(1)\n"
            "os.environ.pop('WORKSHOP_PROGRESS', None)\n"
            "import json; print(json.dumps([down, alone]))"
        )
        assert_ok(timed)
        down, alone = json.loads(timed.printed.strip().splitlines()[-1])
        # The room down adds no wait: a check takes what it takes alone (no timeout, no retry
        # in it). The margin is for a busy machine, far below the 5 s connect timeout.
        assert statistics.median(down) < statistics.median(alone) * 1.5 + 0.1, (down, alone)
        try:
            room.start()
            started = time.monotonic()
            # Four checks were made while it was down (the warm one and three timed).
            wait_for(
                lambda: (
                    room.row("carol").get("exercises", {}).get("01.q1", {}).get("attempts") == 4
                ),
                timeout=20,
            )
            arrived = time.monotonic() - started
            assert room.row("carol")["exercises"]["01.q1"]["status"] == "passed"
            assert arrived < 15  # the backoff's next tries: 0.5, 1, 2, 4, 8, 10 s at most
        finally:
            room.stop()


def test_the_next_check_prints_the_instructors_announcement_once(room):

    with learner(room.url, "dora") as dora:
        assert_ok(dora.run("from workshop_lib.checks.echo import q1"))
        assert_ok(dora.run(RIGHT))
        wait_for(lambda: room.row("dora").get("online"), 20)
        announce(f"ws://127.0.0.1:{room.port}/progress/watch", "break until 11:00")
        # The kernel hears it over its open connection (wait for that, not for a time)...
        assert_ok(
            dora.run(
                "import time\nfrom workshop_lib.progress import reporter\n"
                "deadline = time.monotonic() + 10\n"
                "while reporter.current()._announcement is None and time.monotonic() < deadline:\n"
                "    time.sleep(0.05)"
            )
        )
        # ...and its next check says it.
        first = dora.run("q1.check(shout)")
        assert "From your instructor: break until 11:00" in first.printed, first
        assert "Correct" in first.result
        again = dora.run("q1.check(shout)")
        assert "From your instructor" not in again.printed  # once
