"""The chat room on the network: presence, history, one order, limits, bad events."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.sync.client import connect

from tests.helpers import spy_on_writes, stall_loop, wait_for
from workshop_lib.chat.client import ChatBot, ChatClient
from workshop_lib.clients.raw import RawClient


def recv_event(websocket, kind: str, timeout: float = 3.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = json.loads(websocket.recv(timeout=timeout))
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind} in time")


def test_join_welcome_presence_and_leave(server):
    url = server.links.ws("/chat")
    with ChatClient(url, "ada") as ada:
        assert ada.you == "ada" and ada.users == ["ada"] and ada.history == []
        with ChatClient(url, " ada ") as second:
            assert second.you == "ada 2"
            assert second.users == ["ada", "ada 2"]
            wait_for(lambda: "ada 2" in ada.users)
        wait_for(lambda: ada.users == ["ada"])
        kinds = [(e["type"], e.get("name")) for e in ada.events]
        assert kinds[-2:] == [("chat.joined", "ada 2"), ("chat.left", "ada 2")]


def test_every_client_receives_every_message_in_one_order(server):
    url = server.links.ws("/chat")
    clients = [ChatClient(url, f"c{i}") for i in range(6)]
    try:
        for round_ in range(8):  # 6 senders x 8 = 48 messages, interleaved
            for client in clients:
                client.send(f"{client.you} says {round_}")
        wait_for(lambda: all(len(c.messages) == 48 for c in clients))
        orders = [[m["id"] for m in c.messages] for c in clients]
        assert all(order == orders[0] for order in orders)
        assert orders[0] == sorted(orders[0]) and len(set(orders[0])) == 48
        texts = [m["text"] for m in clients[0].messages]
        for client in clients:  # each sender's own messages keep their order
            own = [t for t in texts if t.startswith(f"{client.you} ")]
            assert own == [f"{client.you} says {r}" for r in range(8)]
    finally:
        for client in clients:
            client.close()


def test_messages_posted_at_once_go_to_a_member_in_one_write(server):
    # Ten members post three messages each while the server's loop is busy: when it runs
    # again, it handles them in one or two turns, and each member gets a turn's messages in
    # one write (one system call), in one order; 30 writes each before this change.
    url = server.links.ws("/chat")
    with ChatClient(url, "ada") as ada, contextlib.ExitStack() as stack:
        posters = []
        for i in range(10):  # max_queue=None: they read everything, so they close at once
            posters.append(stack.enter_context(connect(url, proxy=None, max_queue=None)))
            posters[-1].send(json.dumps({"type": "chat.join", "name": f"p{i}"}))
            recv_event(posters[-1], "chat.welcome")
        wait_for(lambda: len(ada.users) == 11)
        writes = spy_on_writes(server, "ada")
        stalled = stall_loop(server, 0.5)  # the posts wait in its sockets
        for round_ in range(3):
            for i, poster in enumerate(posters):
                poster.send(json.dumps({"type": "chat.send", "text": f"p{i}/{round_}"}))
        stalled.result(5)
        wait_for(lambda: len(ada.messages) == 30)
        got = [m["text"] for m in ada.messages]
    assert sorted(got) == sorted(f"p{i}/{r}" for i in range(10) for r in range(3))
    for i in range(10):  # each poster's own messages keep their order
        assert [t for t in got if t.startswith(f"p{i}/")] == [f"p{i}/{r}" for r in range(3)]
    carrying = [w for w in writes if b"chat.message" in w]
    assert sum(w.count(b'"chat.message"') for w in carrying) == 30
    assert len(carrying) <= 4, [w.count(b'"chat.message"') for w in carrying]


def test_late_joiners_get_the_recent_history(server):
    url = server.links.ws("/chat")
    server.lesson("chat").burst = 100  # this test is about history, not the rate limit
    with ChatClient(url, "early") as early:
        for i in range(55):
            early.send(f"m{i}")
        wait_for(lambda: len(early.messages) == 55)
        with ChatClient(url, "late") as late:
            assert [m["text"] for m in late.history] == [f"m{i}" for i in range(5, 55)]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ('{"type": "chat.send", "text": "hi"}', "join_first"),
        ("not json", "bad_json"),
        ('{"type": "chat.shout"}', "unknown_type"),
        ('{"type": "chat.join"}', "bad_value"),
        ('{"type": "chat.join", "name": ""}', "bad_value"),
    ],
)
def test_bad_events_before_joining_get_errors_and_the_connection_stays(server, event, code):
    with connect(server.links.ws("/chat")) as websocket:
        websocket.send(event)
        assert recv_event(websocket, "error")["code"] == code
        websocket.send('{"type": "chat.join", "name": "after"}')
        assert recv_event(websocket, "chat.welcome")["you"] == "after"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ('{"type": "chat.send", "text": "   "}', "bad_value"),
        ('{"type": "chat.send", "text": 42}', "bad_value"),
        ('{"type": "chat.send"}', "bad_value"),
        ('{"type": "chat.join", "name": "again"}', "already_joined"),
    ],
)
def test_bad_events_after_joining_harm_nobody(server, event, code):
    url = server.links.ws("/chat")
    with ChatClient(url, "bystander") as bystander, connect(url) as websocket:
        websocket.send('{"type": "chat.join", "name": "joker"}')
        recv_event(websocket, "chat.welcome")
        websocket.send(event)
        assert recv_event(websocket, "error")["code"] == code
        websocket.send('{"type": "chat.send", "text": "still here"}')
        assert recv_event(websocket, "chat.message")["text"] == "still here"
        wait_for(lambda: [m["text"] for m in bystander.messages] == ["still here"])
        assert bystander.errors == []


def test_flooding_is_rate_limited_then_closed_with_4029(server):
    url = server.links.ws("/chat")
    with ChatClient(url, "calm") as calm, connect(url, max_queue=None) as flooder:
        flooder.send('{"type": "chat.join", "name": "flood"}')
        recv_event(flooder, "chat.welcome")
        # The server may close before the last of these is sent: that is the point.
        with contextlib.suppress(ConnectionClosed):
            for i in range(60):
                flooder.send(json.dumps({"type": "chat.send", "text": f"spam {i}"}))
        errors = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # what was received before the close is still delivered
                event = json.loads(flooder.recv(timeout=5))
                # (the last one, with "close": 4029, says why the connection ends)
                errors += event["type"] == "error" and "close" not in event
        assert closed.value.rcvd.code == 4029
        # 20 refusals answered (a few more if the patience refilled meanwhile), then closed.
        assert 20 <= errors <= 23
        wait_for(lambda: "flood" not in calm.users)
        assert len(calm.messages) == 9  # the burst (10, one spent on joining) got through
        calm.send("the room still works")
        wait_for(lambda: calm.messages[-1]["text"] == "the room still works")


def test_sustained_flooding_is_closed_even_when_spaced_out(server):
    """A flood of 30 messages a second never has 20 refusals in a row, and still closes."""
    with connect(server.links.ws("/chat"), max_queue=None) as flooder:
        flooder.send('{"type": "chat.join", "name": "steady"}')
        recv_event(flooder, "chat.welcome")
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            for i in range(600):
                flooder.send(json.dumps({"type": "chat.send", "text": f"spam {i}"}))
                time.sleep(1 / 30)
        assert closed.value.rcvd.code == 4029
        assert time.monotonic() - started < 10


def test_a_member_that_stops_reading_is_disconnected_not_queued_for(server):
    url = server.links.ws("/chat")
    chat = server.lesson("chat")
    chat.queue_limit = 16 * 1024  # reached in a second, not after minutes
    chat.burst = chat.rate = 10_000  # this test is about the queue, not the rate limit
    stalled = RawClient("127.0.0.1", server.port, "/chat", receive_buffer=4096)
    stalled.send_frame(Opcode.TEXT, b'{"type": "chat.join", "name": "sleepy"}')
    with ChatBot(url, "talker", lambda *_: None) as talker, ChatClient(url, "reader") as reader:
        wait_for(lambda: "sleepy" in reader.users, timeout=15)
        text = "x" * 500
        deadline = time.monotonic() + 20
        while "sleepy" in reader.users:
            assert time.monotonic() < deadline, "the stalled member was never dropped"
            talker.send(text)
            time.sleep(0.002)
        assert any(e["type"] == "chat.left" and e["name"] == "sleepy" for e in reader.events)
        wait_for(lambda: len(reader.messages) == len(talker.messages), timeout=15)
        assert [m["id"] for m in reader.messages] == [m["id"] for m in talker.messages]
    stalled.vanish()


def test_stopping_the_server_closes_members_with_1001(server):
    with ChatClient(server.links.ws("/chat"), "ada") as ada:
        server.stop()
        wait_for(lambda: not ada.connected)
        assert ada.close_code == 1001
