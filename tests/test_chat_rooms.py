"""One handler, two rooms: ``/chat`` says the same on the wire whether its room is in memory
(chat/rooms.py's LocalRoom) or in Redis (chat/shared_room.py's SharedRoom), with a real
redis-server and raw clients that see every event."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.helpers import wait_for
from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.rooms import LocalRoom, RoomBackend
from workshop_lib.chat.server import ChatLesson
from workshop_lib.chat.shared_room import SharedRoom

# The shapes of docs/protocol.md ("The chat room"). With Redis every room event takes an id
# from the one stream, joins and leaves included.
WELCOME = {"type", "you", "users", "history", "room"}
MESSAGE = {"type", "id", "from", "text", "ts"}
PRESENCE = {"type", "name"}


@pytest.fixture(params=["memory", "redis"])
def chat(request: pytest.FixtureRequest) -> Iterator[WorkshopServer]:
    """A server whose chat room lives in this process, or in Redis."""
    options = {}
    if request.param == "redis":
        options = {"redis": request.getfixturevalue("redis_url"), "redis_prefix": uuid.uuid4().hex}
    lesson = ChatLesson(**options)
    with start_server(port=0, name=f"rooms-{uuid.uuid4().hex[:8]}", lessons=[lesson]) as server:
        if request.param == "redis":
            wait_for(lambda: lesson.redis_ok, 10)
        yield server


def receive(websocket: ClientConnection, kind: str, timeout: float = 5.0) -> dict:
    """The next event of type ``kind``, skipping others (another member's presence)."""
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(websocket.recv(timeout=max(0.01, deadline - time.monotonic())))
        if event["type"] == kind:
            return event


@contextlib.contextmanager
def join(url: str, name: str, **fields: object) -> Iterator[tuple[ClientConnection, dict]]:
    """A member of the room: its connection, and the welcome it got."""
    with connect(url) as websocket:
        websocket.send(json.dumps({"type": "chat.join", "name": name, **fields}))
        yield websocket, receive(websocket, "chat.welcome")


def test_each_room_is_chosen_once_and_implements_the_interface(chat: WorkshopServer) -> None:
    lesson = chat.lesson("chat")
    backend = lesson.backend
    assert isinstance(backend, RoomBackend)
    if lesson.redis_url is None:
        assert isinstance(backend, LocalRoom) and lesson.redis_ok is None
    else:
        assert isinstance(backend, SharedRoom) and lesson.redis_ok is True
    assert backend.members is lesson.members and backend.instance


def test_join_post_and_leave_read_the_same_in_both_rooms(chat: WorkshopServer) -> None:
    url = chat.links.ws("/chat")
    shared = chat.lesson("chat").redis_ok is not None
    with join(url, "ada") as (ada, welcome):
        assert set(welcome) == WELCOME | ({"resume"} if shared else set())
        assert welcome["you"] == "ada" and welcome["users"] == ["ada"]
        assert welcome["history"] == [] and welcome["room"] == chat.lesson("chat").backend.instance
        assert set(receive(ada, "chat.joined")) - {"id"} == PRESENCE  # her own, after it
        with join(url, "ada") as (bob, _):  # a taken name gets a number, in either room
            joined = receive(ada, "chat.joined")
            assert joined["name"] == "ada 2"
            bob.send(json.dumps({"type": "chat.send", "text": "  hello  "}))
            seen = [receive(member, "chat.message") for member in (ada, bob)]
            assert seen[0] == seen[1] and set(seen[0]) == MESSAGE
            assert seen[0]["from"] == "ada 2" and seen[0]["text"] == "hello"
        left = receive(ada, "chat.left")
        assert left["name"] == "ada 2" and set(left) - {"id"} == PRESENCE
        # A rejoin that saw that message gets nothing again; one that saw none gets it.
        for since, history in ((seen[0]["id"], []), (0, [seen[0]])):
            with join(url, "cy", since=since, room=welcome["room"]) as (_, rejoined):
                assert rejoined["history"] == history
    wait_for(lambda: not chat.lesson("chat").members)
    assert chat.lesson("chat").stats()["members"] == 0


ADA = {"type": "chat.join", "name": "ada"}


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([{"type": "chat.send", "text": "hi"}], "join_first"),
        ([ADA, ADA], "already_joined"),
        ([{**ADA, "since": -1}], "invalid_since"),
        ([ADA, {"type": "chat.send", "text": "\x1b[2J"}], "bad_value"),
        ([{**ADA, "name": ""}], "bad_value"),
    ],
)
def test_bad_events_get_the_same_error_in_both_rooms(
    chat: WorkshopServer, events: list[dict], code: str
) -> None:
    with connect(chat.links.ws("/chat")) as websocket:
        for event in events:
            websocket.send(json.dumps(event))
        error = receive(websocket, "error")
        assert error["code"] == code, error
        websocket.send(json.dumps({"type": "heartbeat"}))  # the connection stays up
        receive(websocket, "heartbeat")
