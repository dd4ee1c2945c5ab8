"""Lesson 02's comparison: WebSocket push, Server-Sent Events, long polling and polling,
each measured against a real server on port 0 (the WebSocket server and its SSE and
long-poll companion, ``ball/http_push.py``), with the bytes checked against the server's.

No timing thresholds: what must hold on a busy machine too is relative (SSE and push far
fresher than a poll, a long poll paying headers per update) or counted exactly.
"""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from workshop_lib import WorkshopServer, start_server
from workshop_lib.ball.compare import measure_all, measure_poll
from workshop_lib.ball.http_push import HttpPush, serve_http_push
from workshop_lib.ball.model import step
from workshop_lib.ball.server import BallLesson

POLL_INTERVAL = 0.5  # s: the poll the others are compared with
SECONDS = 1.5  # each measurement; all four run at once


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[WorkshopServer, HttpPush]]:
    with (
        start_server(port=0, name=f"compare-{uuid.uuid4().hex[:8]}") as server,
        serve_http_push(server) as push,
    ):
        yield server, push


@pytest.fixture(scope="module")
def still() -> Iterator[tuple[WorkshopServer, HttpPush]]:
    """A ball whose ticker waits 1000 s: it moves only when a test ticks it (``_tick``)."""
    lessons = [BallLesson(rate=1e-3)]
    with (
        start_server(port=0, name=f"still-{uuid.uuid4().hex[:8]}", lessons=lessons) as server,
        serve_http_push(server, hold=0.2) as push,
    ):
        yield server, push


def _tick(server: WorkshopServer) -> int:
    """One tick of the ball, published as the ticker does; returns the new tick."""

    async def tick() -> int:
        lesson = server.lesson("ball")
        lesson.state = step(lesson.state, 1 / 60)
        lesson.publish()
        return lesson.state.tick

    return server.run(tick())


def _get(push: HttpPush, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", push.port, timeout=10)
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


def test_four_methods_measured_alike_and_every_byte_counted(lab):
    server, push = lab
    sent, received = push.bytes_sent, push.bytes_received
    ws, sse, long_poll, poll = measure_all(server, push, SECONDS, intervals=(POLL_INTERVAL,))
    assert [m.method for m in (ws, sse, long_poll, poll)] == [
        "WebSocket",
        "SSE",
        "long poll",
        "poll every 500 ms",
    ]
    # Updates arrive: the three pushes get many of the 90 ticks (60 a second), the poll its 3.
    # A long poll pays a request per update, so a busy machine cuts it most (28 at load 15):
    # a push still gets five times a poll's updates.
    for pushed in (ws, sse, long_poll):
        assert pushed.updates >= 20, (pushed.method, pushed.updates)
    assert 2 <= poll.updates <= 4
    # Fresh: all three push methods hold a state far younger than a poll's, far less
    # than the poll's interval.
    for pushed in (ws, sse, long_poll):
        assert pushed.median_staleness_ms < poll.median_staleness_ms / 2, pushed.method
        assert pushed.median_staleness_ms < 0.4 * POLL_INTERVAL * 1e3, pushed.method
    # The WebSocket and SSE send one request (the handshake) and nothing more up; a long
    # poll sends a request per update and gets a status line and headers with each state.
    assert 0 < ws.bytes_up < 300 and 0 < sse.bytes_up < 300
    assert long_poll.bytes_up / long_poll.updates > 50  # "GET /api/ball/poll?since=N ..."
    per_frame = ws.bytes_down / ws.updates  # ~170 bytes of state and a 2-byte header
    assert long_poll.bytes_down / long_poll.updates > per_frame + 100
    assert sse.bytes_down / sse.updates < per_frame + 60  # "id: N", "data: ", chunk sizes
    # Every byte counted: the companion counted what its sockets moved. Every request was
    # read whole; the SSE stream goes on writing at 60 Hz until the client's close reaches
    # it, which a busy machine can hold up for 100 ms: six events, no more (and the
    # server's thread adds what it wrote just after the write, so wait for it).
    assert push.bytes_received - received == sse.bytes_up + long_poll.bytes_up
    down = sse.bytes_down + long_poll.bytes_down
    wait_for(lambda: push.bytes_sent - sent >= down)
    assert push.bytes_sent - sent - down < 6 * per_frame + 100


def test_polling_pays_a_connection_and_headers_per_update(server):
    poll = measure_poll(server.links.url("/api/ball"), interval=0.1, seconds=0.5)
    # About 5 polls; a busy machine gets through fewer (never more) in the half second.
    assert 1 <= poll.updates <= 6, poll.updates
    # A request and a whole response (status, headers, 170 bytes of state) each time.
    assert poll.bytes_up / poll.updates > 50
    assert poll.bytes_down / poll.updates > 170 + 100


def test_sse_stream_is_the_websocket_frame_with_an_id_per_tick(lab):
    _, push = lab
    response = _get(push, "/ball/events", Accept="text/event-stream")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.readline() == b"retry: 1000\n"  # how soon an EventSource reconnects
    lines = [response.readline() for _ in range(7)]
    events = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
    ids = [int(line[4:]) for line in lines if line.startswith(b"id: ")]
    assert [e["tick"] for e in events] == ids[: len(events)] and len(events) >= 2
    assert events[0]["type"] == "ball.state" and ids[1] > ids[0]
    response.close()


def test_sse_resumes_after_last_event_id(still):
    server, push = still
    tick = server.lesson("ball").state.tick
    response = _get(push, "/ball/events", **{"Last-Event-ID": str(tick)})
    assert response.readline() == b"retry: 1000\n" and response.readline() == b"\n"
    # Not the state it has (tick), but the next one, when there is one.
    assert _tick(server) == tick + 1
    assert response.readline() == f"id: {tick + 1}\n".encode()
    response.close()


def test_long_poll_is_held_until_a_newer_tick(still):
    server, push = still
    now = _get(push, "/api/ball/poll")  # no since: the current state at once
    assert now.status == 200 and now.getheader("Content-Type") == "application/json"
    tick = json.loads(now.read())["tick"]
    # Held for `hold` (0.2 s here), then "nothing new": 204, and the client asks again.
    assert _get(push, f"/api/ball/poll?since={tick}").status == 204
    held = http.client.HTTPConnection("127.0.0.1", push.port, timeout=10)
    held.request("GET", f"/api/ball/poll?since={tick}")
    _tick(server)
    answer = held.getresponse()
    assert answer.status == 200 and json.loads(answer.read())["tick"] == tick + 1
    # A tick from before a restart (ahead of this server's) gets the current state at once.
    assert json.loads(_get(push, "/api/ball/poll?since=99999999").read())["tick"] == tick + 1


@pytest.mark.parametrize(
    ("path", "headers", "named"),
    [
        ("/api/ball/poll?since=soon", {}, "since"),
        ("/api/ball/poll?since=1.5", {}, "since"),
        ("/ball/events", {"Last-Event-ID": "latest"}, "Last-Event-ID"),
    ],
)
def test_a_tick_that_is_not_a_number_gets_a_400_that_says_so(lab, path, headers, named, caplog):
    _, push = lab
    response = _get(push, path, **headers)
    assert response.status == 400
    error = json.loads(response.read())
    assert error["code"] == "bad_since"
    assert error["message"].startswith(f"{named} must be a whole number")
    # The client's mistake is answered, not logged as a warning (nor printed by tornado).
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_stop_ends_held_requests_and_lets_the_ball_go(server):
    push = serve_http_push(server)
    stream = _get(push, "/ball/events")
    stream.readline()
    wait_for(lambda: push.bytes_sent > 0)
    lesson = server.lesson("ball")
    assert len(lesson.frame_listeners) == 1
    push.stop()
    assert lesson.frame_listeners == []
    try:  # what was on its way, then the end (the closed chunked stream is cut short)
        while stream.readline():
            pass
    except http.client.IncompleteRead:
        pass
    assert "stopped" in repr(push)


def test_a_server_stopped_first_ends_the_streams_quietly(caplog):
    lessons = [BallLesson(rate=1e-3)]  # no tick: the long poll below stays held
    with start_server(port=0, name=f"first-{uuid.uuid4().hex[:8]}", lessons=lessons) as server:
        push = serve_http_push(server)
        stream = _get(push, "/ball/events")
        stream.readline()
        held = http.client.HTTPConnection("127.0.0.1", push.port, timeout=10)
        held.request("GET", f"/api/ball/poll?since={server.lesson('ball').state.tick}")
        wait_for(lambda: push.counts.requests == 2)
    answer = held.getresponse()
    assert (answer.status, answer.read()) == (503, b"The server is stopping.\n")
    while stream.readline():  # the event it had, then the stream's proper end
        pass
    push.stop()  # after the server: only its listening socket was left to close
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_other_paths_and_methods_get_a_sentence_not_a_page(lab):
    _, push = lab
    missing = _get(push, "/ball/stream")
    assert missing.status == 404
    assert "/ball/events" in json.loads(missing.read())["message"]
    connection = http.client.HTTPConnection("127.0.0.1", push.port, timeout=10)
    connection.request("POST", "/api/ball/poll", body=b"{}")
    refused = connection.getresponse()
    assert refused.status == 405 and json.loads(refused.read())["code"] == "http_error"
