"""Look-alike names (chat/lookalike.py): a name that renders as one in the room is numbered,
one with characters that render as nothing is refused; in one process and across processes."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from websockets.sync.client import connect

from workshop_lib import start_server
from workshop_lib.chat.lookalike import skeleton
from workshop_lib.chat.model import Room
from workshop_lib.chat.redis_room import RedisRoom
from workshop_lib.wire.protocol import ProtocolError

HIDDEN = ["ad\u034fa", "ada\u3164", "\u115fada", "ada\uffa0", "ada\u2800", "ada\ufe0f"]
LOOK_ALIKES = ["\u0430da", "\uff41\uff44\uff41", "\U0001d41a\U0001d41d\U0001d41a"]


@pytest.mark.parametrize("name", HIDDEN)
def test_a_name_with_a_character_that_renders_as_nothing_is_refused(name):
    room = Room()
    room.join("ada")
    with pytest.raises(ProtocolError) as refused:
        room.join(name)
    assert refused.value.code == "bad_value"
    assert "invisible" in str(refused.value)


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_look_alike_of_a_name_in_the_room_is_numbered(name):
    room = Room()
    assert room.join("ada") == "ada"
    given = room.join(name)
    assert given == f"{name} 2" and skeleton(given) != skeleton("ada")
    room.leave("ada")
    assert room.join(name) == name  # the look is free again


def test_names_that_merely_differ_are_not_look_alikes():
    room = Room()
    assert [room.join(n) for n in ("ada", "Ada", "adam", "Анна", "bob")] == [
        "ada",
        "Ada",
        "adam",
        "Анна",
        "bob",
    ]


def test_the_room_keeps_nothing_per_name_once_its_holders_left():
    room = Room()
    for i in range(2000):
        names = [room.join(f"user{i}") for _ in range(3)]
        for name in names:
            room.leave(name)
    assert (room._next, room._freed, room._holders, room._looks) == ({}, {}, {}, set())
    assert room.join("user7") == "user7"


def test_on_a_real_server_the_look_alike_is_numbered_and_the_hidden_refused():
    with start_server(port=0, name=f"looks-{uuid.uuid4().hex[:8]}") as server:
        url = server.links.ws("/chat")
        with connect(url, open_timeout=5) as ada, connect(url, open_timeout=5) as other:
            ada.send(json.dumps({"type": "chat.join", "name": "ada"}))
            assert json.loads(ada.recv(timeout=5))["you"] == "ada"
            other.send(json.dumps({"type": "chat.join", "name": "ad\u034fa"}))
            error = json.loads(other.recv(timeout=5))
            assert error["type"] == "error" and error["code"] == "bad_value"
            assert "U+034F" in error["message"]
            other.send(json.dumps({"type": "chat.join", "name": "\u0430da"}))
            assert json.loads(other.recv(timeout=5))["you"] == "\u0430da 2"


def test_look_alikes_are_numbered_across_processes(redis_url):
    async def main() -> list[str]:
        prefix = f"test:{uuid.uuid4().hex[:8]}"
        one, two = (RedisRoom(redis_url, prefix=prefix, process=p) for p in ("p0", "p1"))
        for room in (one, two):
            await room.connect()
        try:
            given = [(await one.join("ada"))[0], (await two.join("\u0430da"))[0]]
            await one.leave("ada")
            given.append((await two.join("\U0001d41a\U0001d41d\U0001d41a"))[0])
            return given
        finally:
            await one.close()
            await two.close()

    assert asyncio.run(main()) == ["ada", "\u0430da 2", "\U0001d41a\U0001d41d\U0001d41a"]
