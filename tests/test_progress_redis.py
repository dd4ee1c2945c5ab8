"""Two room processes with one Redis are one room: one board, one announcement, presence;
a room process that restarts reads the session back from Redis."""

from __future__ import annotations

import json
import urllib.request
import uuid

from websockets.sync.client import connect

from tests.helpers import wait_for
from workshop_lib import WorkshopServer, start_server
from workshop_lib.progress.server import ProgressLesson

TOKEN = "learners-token-for-tests"
KEY = "instructor-key-for-tests"


def room_process(redis_url: str, room: str, port: int = 0) -> WorkshopServer:
    return start_server(
        port=port,
        name=f"room-{uuid.uuid4().hex[:8]}",
        token=TOKEN,
        lessons=[ProgressLesson(KEY, exercises=["01.q1"], redis=redis_url, redis_key=room)],
    )


def board(server: WorkshopServer) -> dict:
    request = urllib.request.Request(
        server.links.url("/api/progress"), headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def row(server: WorkshopServer, name: str) -> dict:
    return next((x for x in board(server)["learners"] if x["name"] == name), {})


def report(name: str, outcome: str = "passed") -> dict:
    return {
        "type": "progress.report",
        "id": uuid.uuid4().hex,
        "name": name,
        "lesson": "echo",
        "exercise": "01.q1",
        "kind": "check",
        "outcome": outcome,
        "attempt": 1,
    }


def test_two_processes_share_one_board_and_a_restart_loses_nothing_acked(redis_url):
    room = f"progress-test-{uuid.uuid4().hex[:8]}"
    a, b = room_process(redis_url, room), room_process(redis_url, room)
    try:
        with connect(
            a.links.ws("/progress"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
        ) as ada:
            ada.send(json.dumps({"type": "progress.hello", "name": "ada"}))
            ada.recv(5)
            sent = report("ada")
            ada.send(json.dumps(sent))
            assert json.loads(ada.recv(5))["type"] == "progress.ack"
            # On the other process: the check, and ada online (presence every 2 s).
            wait_for(lambda: row(b, "ada").get("exercises", {}).get("01.q1"), timeout=10)
            wait_for(lambda: row(b, "ada").get("online") is True, timeout=10)
            assert row(b, "ada")["exercises"]["01.q1"]["status"] == "passed"
            # An announcement made on b reaches ada's connection on a.
            with connect(
                b.links.ws("/progress/watch"), additional_headers={"Authorization": f"Bearer {KEY}"}
            ) as watch:
                watch.recv(5)
                watch.send(json.dumps({"type": "progress.announce", "text": "break until 11"}))
            while (event := json.loads(ada.recv(10)))["type"] != "progress.announcement":
                pass
            assert event["announcement"]["text"] == "break until 11"
            # The same event again, sent to b: counted once across the room.
            with connect(
                b.links.ws("/progress"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
            ) as again:
                again.send(json.dumps({"type": "progress.hello", "name": "ada"}))
                again.recv(5)
                again.send(json.dumps(sent))
                while (ack := json.loads(again.recv(5)))["type"] != "progress.ack":
                    pass
                assert ack["duplicate"] is True
        wait_for(lambda: row(b, "ada").get("online") is False, timeout=10)
        # a restarts: the new process reads the session back from Redis, no kernel needed.
        port = a.port
        a.stop()
        a = room_process(redis_url, room, port)
        wait_for(lambda: row(a, "ada").get("exercises", {}).get("01.q1"), timeout=10)
        mine = row(a, "ada")["exercises"]["01.q1"]
        assert (mine["status"], mine["attempts"]) == ("passed", 1)
        assert board(a)["announcement"]["text"] == "break until 11"
    finally:
        a.stop()
        b.stop()
