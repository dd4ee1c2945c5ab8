"""Redis losing the room's data (FLUSHALL, or a restart empty), with members connected on two
processes: a new room that every member is told of, nothing accepted dropped without its
sender being told, and ids that never go backwards within one room. And a ``since`` too large
for any id is the client's mistake (``invalid_since``), not an outage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis
from websockets.sync.client import connect

from tests.helpers import wait_for
from workshop_lib import start_server
from workshop_lib.chat.client import ChatClient
from workshop_lib.chat.server import ChatLesson
from workshop_lib.redis.local import LocalRedis

TIMEOUT = 10


@pytest.fixture
def scratch_redis() -> Iterator[LocalRedis]:
    """A Redis of this test's own (it is emptied on purpose), without persistence."""
    with LocalRedis() as local:
        yield local


def processes(url: str, stack: ExitStack) -> list:
    return [
        stack.enter_context(
            start_server(
                port=0,
                name=f"loss-{uuid.uuid4().hex[:8]}",
                lessons=[ChatLesson(redis=url, burst=100, rate=100)],
            )
        )
        for _ in range(2)
    ]


def ids_by_room(client: ChatClient) -> dict[str, list[int]]:
    """The ids of every event with one that ``client`` received, per room, in order."""
    room = "the first"  # the first welcome came before the events
    rooms: dict[str, list[int]] = {room: []}
    for event in list(client.events):
        if event.get("type") == "chat.welcome":
            room = event["room"]
            rooms.setdefault(room, [])
        elif isinstance(event.get("id"), int):
            rooms[room].append(event["id"])
    return rooms


def my_texts(client: ChatClient) -> list[str]:
    return [m["text"] for m in list(client.messages)]


@pytest.mark.parametrize("loss", ["flushall", "restart empty"])
def test_a_room_whose_data_redis_lost_is_a_new_room_everyone_is_told_of(scratch_redis, loss):
    with ExitStack() as stack:
        one, two = processes(scratch_redis.url, stack)
        ada = stack.enter_context(ChatClient(one.links.ws("/chat"), "ada"))
        bob = stack.enter_context(ChatClient(two.links.ws("/chat"), "bob"))
        wait_for(lambda: len(ada.users) == 2 and len(bob.users) == 2, TIMEOUT)
        for i in range(5):
            ada.send(f"before {i}")
        wait_for(lambda: len(my_texts(bob)) == 5, TIMEOUT)
        old_room = ada.room
        if loss == "flushall":
            redis.Redis.from_url(scratch_redis.url).flushall()
        else:
            scratch_redis.stop()
            scratch_redis.start()
        # Posts right away: each is delivered to everyone, or refused to its sender.
        for i in range(5):
            ada.send(f"during {i}")
            bob.send(f"during {i}")
        wait_for(lambda: ada.room != old_room and bob.room != old_room, TIMEOUT)
        assert ada.room == bob.room  # one new room, for both processes
        ada.send("after")
        wait_for(lambda: "after" in my_texts(bob) and "after" in my_texts(ada), TIMEOUT)
        for client in (ada, bob):
            for room, ids in ids_by_room(client).items():
                assert ids == sorted(set(ids)), f"{client.you}: ids went back in {room}: {ids}"
        # Every "during" post was delivered to both, or its sender was told it was not.
        for sender in (ada, bob):
            refused = sum(e["code"] == "unavailable" for e in list(sender.errors))
            delivered = [t for t in my_texts(sender) if t.startswith("during")]
            mine = [
                m["text"]
                for m in list(sender.messages)
                if m["from"] == sender.you and m["text"].startswith("during")
            ]
            assert len(mine) + refused == 5, (sender.you, mine, refused)
            other = bob if sender is ada else ada
            theirs = [m["text"] for m in list(other.messages) if m["from"] == sender.you]
            assert set(mine) <= set(theirs), (delivered, theirs)
        assert one.app._health()["status"] == "ok"


def test_a_since_too_large_for_any_id_is_invalid_since_not_an_outage(scratch_redis):
    with start_server(
        port=0, name=f"loss-{uuid.uuid4().hex[:8]}", lessons=[ChatLesson(redis=scratch_redis.url)]
    ) as server:
        wait_for(lambda: server.app._health()["status"] == "ok", TIMEOUT)
        for since in (2**63, 2**64, 10**30):
            with connect(server.links.ws("/chat"), open_timeout=5) as ws:
                ws.send(json.dumps({"type": "chat.join", "name": "ada", "since": since}))
                event = json.loads(ws.recv(timeout=5))
            assert event["type"] == "error" and event["code"] == "invalid_since", event
        assert server.app._health()["status"] == "ok"
