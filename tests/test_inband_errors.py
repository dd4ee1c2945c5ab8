"""Errors that survive a proxy: the reason comes in band, before the close, and clients use it.

jupyter-server-proxy does not pass close codes on, so before closing with 4001, 4029, 1008
or 1009 the server sends ``{"type": "error", "code", "message", "close"}``. Here: each of
those closes is preceded by its event, on a real server; and through a real relay that
drops close codes (tests/relay.py), the Python clients still report the real reason and
do not reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Opcode
from websockets.sync.client import connect

from tests.helpers import wait_for
from tests.relay import CloseDroppingRelay
from workshop_lib import start_server
from workshop_lib.chat.client import ChatBot, ChatClient
from workshop_lib.clients.raw import RawClient
from workshop_lib.server.start import WorkshopServer
from workshop_lib.wire.protocol import NO_RETRY, announced_close

TOKEN = "s3cret-for-tests"


@pytest.fixture(scope="module")
def guarded() -> Iterator[WorkshopServer]:
    """One token server for the module; each test sets the chat's limits it needs."""
    with start_server(port=0, name="inband", token=TOKEN) as server:
        yield server


@pytest.fixture
def chat(guarded, monkeypatch):
    """The chat lesson, its limits restored after the test."""
    lesson = guarded.lesson("chat")
    for name in ("burst", "rate", "strikes", "join_grace", "queue_limit", "close_grace"):
        monkeypatch.setattr(lesson, name, getattr(lesson, name))
    return lesson


def member(server: WorkshopServer, path: str, **kwargs):
    """websockets' sync client of ``path``, with the token in its header."""
    headers = server.auth_headers
    return connect(server.links.ws(path), additional_headers=headers, proxy=None, **kwargs)


def read_until_closed(websocket) -> tuple[list[dict], int | None]:
    """Every event until the connection ends, and the close code received (None: none)."""
    events = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            events.append(json.loads(websocket.recv(timeout=5)))
    return events, closed.value.rcvd.code if closed.value.rcvd else None


def assert_announced(events: list[dict], code: int, name: str) -> None:
    """The last event before the close says why, in the agreed shape."""
    last = events[-1]
    assert last["type"] == "error" and last["close"] == code and last["code"] == name, last
    assert isinstance(last["message"], str) and len(last["message"]) > 10
    assert announced_close(last) == code


# -- the server: the event, then the close ---------------------------------------------------


def test_a_wrong_first_message_token_is_said_before_4001(guarded):
    origin = {"Origin": f"http://127.0.0.1:{guarded.port}"}  # a browser: auth by message
    with connect(guarded.links.ws("/chat"), additional_headers=origin, proxy=None) as websocket:
        websocket.send(json.dumps({"type": "auth", "token": "wrong"}))
        events, code = read_until_closed(websocket)
    assert code == 4001 and len(events) == 1
    assert_announced(events, 4001, "unauthorized")
    assert events[0]["message"].startswith("wrong token")
    # Sent by the core on any path: it carries the Realtime API's error object too.
    assert events[0]["error"]["code"] == "unauthorized"


def test_flooding_is_said_before_4029(guarded, chat):
    chat.burst, chat.rate, chat.strikes = 2, 0.01, 3
    with member(guarded, "/chat", max_queue=None) as flooder:
        flooder.send('{"type": "chat.join", "name": "flood"}')
        for i in range(5):  # join + 1 let through, 3 refused, 1 closes
            try:
                flooder.send(json.dumps({"type": "chat.send", "text": f"spam {i}"}))
            except ConnectionClosed:
                break
        events, code = read_until_closed(flooder)
    assert code == 4029
    assert_announced(events, 4029, "flooding")
    # The refusals before it only dropped a message: no close announced in them.
    refusals = [e for e in events[:-1] if e["type"] == "error"]
    assert len(refusals) == 3 and all("close" not in e for e in refusals)


def test_never_joining_is_said_before_1008(guarded, chat):
    chat.join_grace = 0.3
    with member(guarded, "/chat") as idle:
        events, code = read_until_closed(idle)
    assert code == 1008 and len(events) == 1
    assert_announced(events, 1008, "join_timeout")


def test_a_message_over_the_limit_is_said_before_1009(guarded):
    with member(guarded, "/ball", max_size=None) as websocket:
        websocket.send("x" * (64 * 1024 + 1))
        events, code = read_until_closed(websocket)  # ball frames, then the refusal
    assert code == 1009
    assert_announced(events, 1009, "message_too_big")
    assert "65536" in events[-1]["message"]


def test_a_member_too_slow_for_the_room_is_told_before_1008(guarded, chat):
    """The event goes in behind the backlog, without waiting: read up to it, it is there."""
    chat.queue_limit = 16 * 1024  # reached in a second, not after minutes
    chat.burst = chat.rate = 10_000  # this test is about the queue, not the rate limit
    url = guarded.links.ws("/chat")
    stalled = RawClient(
        "127.0.0.1", guarded.port, "/chat", receive_buffer=4096, headers=guarded.auth_headers
    )
    try:
        stalled.send_frame(Opcode.TEXT, b'{"type": "chat.join", "name": "sleepy"}')
        with (
            ChatBot(url, "talker", lambda *_: None, token=TOKEN) as talker,
            ChatClient(url, "reader", token=TOKEN) as reader,
        ):
            wait_for(lambda: "sleepy" in reader.users, timeout=15)
            deadline = time.monotonic() + 20
            while "sleepy" in reader.users:
                assert time.monotonic() < deadline, "the stalled member was never dropped"
                talker.send("x" * 500)
                time.sleep(0.002)
            # Now read it all, at once (the server waits 2 s for the close handshake).
            last_text, close = None, None
            while (frame := stalled.read_frame()) is not None:
                if frame.opcode is Opcode.TEXT:
                    last_text = json.loads(frame.data)
                elif frame.opcode is Opcode.CLOSE:
                    close = Close.parse(frame.data).code
                    break
        assert close == 1008
        assert last_text is not None
        assert_announced([last_text], 1008, "too_slow")
    finally:
        stalled.vanish()


# -- the close waits for the client, and nothing comes between -------------------------------


def read_to_announced_close(websocket) -> list[dict]:
    """Every event up to and with the first that announces a close."""
    events = [json.loads(websocket.recv(timeout=5))]
    while announced_close(events[-1]) is None:
        events.append(json.loads(websocket.recv(timeout=5)))
    return events


def test_a_chat_client_closes_as_soon_as_it_reads_the_closing_event(guarded, chat):
    """Behind jupyter-server-proxy, a server's close makes the proxy cut the line at the
    client's next message, and a client whose send then fails loses what it had not read
    (tests/browser/test_hub.py shows it with the real proxy). So the server waits (its
    grace, long here) for the client to close, and ChatClient does so, with the code."""
    chat.burst, chat.rate, chat.strikes, chat.close_grace = 2, 0.01, 3, 60
    with ChatClient(guarded.links.ws("/chat"), "quick", token=TOKEN, reconnect=True) as client:
        with contextlib.suppress(ConnectionClosed):
            for i in range(40):
                if client.close_code is not None:
                    break
                client.send(f"spam {i}")
        client._reader.join(10)  # far less than the grace: the client did not wait for it
        assert not client._reader.is_alive()
        protocol = client._websocket.protocol
        assert protocol.close_rcvd_then_sent is False  # the client's close came first
        assert protocol.close_sent is not None and protocol.close_sent.code == 4029
        assert (client.close_code, client.reconnects) == (4029, 0)
        assert client.close_reason.startswith("rate limited")


def test_nothing_from_the_room_follows_the_closing_event(guarded, chat):
    """While the server waits for the flooder's close, the room goes on talking: none of
    it reaches the flooder, whose last message stays the event that says why."""
    chat.burst, chat.rate, chat.strikes, chat.close_grace = 2, 0.01, 3, 60
    url = guarded.links.ws("/chat")
    with ChatClient(url, "talker", token=TOKEN) as talker:
        with member(guarded, "/chat", max_queue=None) as flooder:
            flooder.send(json.dumps({"type": "chat.join", "name": "flood"}))
            wait_for(lambda: "flood" in talker.users)
            for i in range(40):
                flooder.send(json.dumps({"type": "chat.send", "text": f"spam {i}"}))
                if "flood" not in chat.members:
                    break
            wait_for(lambda: "flood" not in chat.members)  # out of the room: the event is sent
            talker.send("said during the grace")
            wait_for(lambda: talker.messages[-1]["text"] == "said during the grace")
            events = read_to_announced_close(flooder)
            flooder.close()  # as a client does when told: the server stops waiting
            after = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    after.append(json.loads(flooder.recv(timeout=5)))
        assert_announced(events, 4029, "flooding")
        assert after == []
        wait_for(lambda: "flood" not in talker.users)  # and the room was told it left


def test_no_ball_frame_follows_the_closing_event(guarded, monkeypatch):
    """The ball goes out 60 times a second; while the server waits for a flooder's close,
    none of it goes to the flooder."""
    monkeypatch.setattr(guarded.lesson("ball"), "close_grace", 0.5)
    with member(guarded, "/ball", max_queue=None) as flooder:
        control = json.dumps({"type": "ball.control", "speed": 1.0})
        with contextlib.suppress(ConnectionClosed):  # the grace may end before the last
            for _ in range(300):
                flooder.send(control)
        events = read_to_announced_close(flooder)
        after, code = read_until_closed(flooder)  # the server closes when the grace ends
    assert_announced(events, 4029, "flooding")
    assert after == [] and code == 4029


def test_a_flood_that_goes_on_through_the_close_still_ends_in_a_clean_handshake(caplog):
    """A flooder that never reads its event nor closes: after the grace the server closes,
    and reads on, so that the client's answer to its close is not stuck behind the flood
    (the server read nothing after its close; each such close ended, after the 2 s close
    timeout, with 1006)."""
    caplog.set_level(logging.INFO, logger="workshop_lib")
    with start_server(port=0, name="inband-handshake") as server:
        chat = server.lesson("chat")
        chat.burst, chat.rate, chat.strikes, chat.close_grace = 2, 0.01, 3, 0.2
        with connect(server.links.ws("/chat"), proxy=None, max_queue=None) as flooder:
            flooder.send(json.dumps({"type": "chat.join", "name": "flood"}))
            port = flooder.local_address[1]
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # as fast as it goes, until the connection is closed
                    flooder.send(json.dumps({"type": "chat.send", "text": "spam"}))
                    assert time.monotonic() - started < 30, "the flood was never closed"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029

        def line() -> list[str]:
            messages = (r.getMessage() for r in caplog.records)
            return [m for m in messages if f":{port} connected" in m]

        wait_for(line)
    assert "(close code 4029)" in line()[0], line()


# -- the clients, behind a proxy that drops close codes ---------------------------------------


def test_the_relay_really_drops_close_codes(guarded, chat):
    chat.join_grace = 0.3
    with (
        CloseDroppingRelay(guarded.port) as relay,
        connect(
            f"ws://127.0.0.1:{relay.port}/chat",
            additional_headers=guarded.auth_headers,
            proxy=None,
        ) as websocket,
    ):
        events, code = read_until_closed(websocket)
        assert code is None and websocket.close_code == 1006  # no close frame came
        assert relay.closes == [1008]  # the server did send one
        assert_announced(events, 1008, "join_timeout")  # and the event got through


@pytest.mark.parametrize("mode", ["cut", "no_status"])
def test_a_flooding_chat_client_behind_the_relay_reports_4029_and_does_not_retry(
    guarded, chat, mode
):
    chat.burst, chat.rate, chat.strikes = 2, 0.01, 3
    with CloseDroppingRelay(guarded.port, mode=mode) as relay:
        url = f"ws://127.0.0.1:{relay.port}/chat"
        with ChatClient(url, "flood", token=TOKEN, reconnect=True) as client:
            for i in range(5):  # join + 1 let through, 3 refused, 1 closes
                try:
                    client.send(f"spam {i}")
                except ConnectionClosed:
                    break
            # The reader thread ends instead of reconnecting: that is the event to wait on.
            client._reader.join(10)
            assert not client._reader.is_alive()
            assert client._websocket.close_code == (1006 if mode == "cut" else 1005)
            assert client.close_code == 4029 and 4029 in NO_RETRY
            assert client.close_reason.startswith("rate limited")
            assert client.reconnects == 0 and relay.upgrades == 1
            assert client.errors[-1]["close"] == 4029
        assert relay.closes == [4029]


def test_the_openai_sdk_reads_the_realtime_4029_with_its_close_field():
    """The Realtime path keeps the API's error shape; the SDK parses the added field."""
    from workshop_lib.realtime.client import LOCAL, openai_client
    from workshop_lib.realtime.server import RealtimeLesson

    lessons = [RealtimeLesson(burst=1, rate=0.01, strikes=2)]
    with start_server(port=0, name="inband-realtime", lessons=lessons) as server:

        async def main() -> list:
            errors = []
            client = openai_client(server)
            async with client.realtime.connect(model="m", **LOCAL) as connection:
                for _ in range(3):  # one let through, two refused: the second closes
                    await connection.input_audio_buffer.clear()
                with pytest.raises(ConnectionClosed):
                    async for event in connection:
                        if event.type == "error":
                            errors.append(event)
            return errors

        errors = asyncio.run(main())
    assert [e.error.code for e in errors] == ["rate_limit_exceeded"] * 2
    assert [(e.model_extra or {}).get("close") for e in errors] == [None, 4029]
