"""The chat room's rules, apart from the network."""

from __future__ import annotations

import pytest

from workshop_lib.app.rates import TokenBucket
from workshop_lib.chat.model import HISTORY, MAX_NAME, Room, clean_name, clean_text
from workshop_lib.wire.protocol import ProtocolError


@pytest.mark.parametrize(
    ("raw", "name"), [("ada", "ada"), ("  ada  ", "ada"), ("x" * 32, "x" * 32)]
)
def test_names_are_trimmed(raw, name):
    assert clean_name(raw) == name


@pytest.mark.parametrize("raw", ["", "   ", "x" * 33, None, 42, "ada\nbob", "a\x1b[31m"])
def test_bad_names_are_refused(raw):
    with pytest.raises(ProtocolError) as error:
        clean_name(raw)
    assert error.value.code == "bad_value"


def test_taken_names_get_a_number_and_stay_within_the_limit():
    room = Room()
    assert [room.join("ada") for _ in range(3)] == ["ada", "ada 2", "ada 3"]
    long = "y" * MAX_NAME
    assert room.join(long) == long
    second = room.join(long)
    assert second.endswith(" 2") and len(second) == MAX_NAME
    room.leave("ada 2")
    assert room.join("ada") == "ada 2"  # free again


def test_texts_are_trimmed_and_bounded():
    assert clean_text("  hi  ") == "hi"
    assert clean_text("x" * 500) == "x" * 500
    for bad in ("", "   \n ", "x" * 501, None, ["hi"]):
        with pytest.raises(ProtocolError):
            clean_text(bad)


def test_ids_grow_and_history_keeps_the_last_fifty():
    room = Room()
    room.join("ada")
    messages = [room.post("ada", f"m{i}", ts=float(i)) for i in range(HISTORY + 10)]
    ids = [m["id"] for m in messages]
    assert ids == sorted(set(ids)) and ids[0] == 1
    welcome = room.welcome("ada")
    assert [m["text"] for m in welcome["history"]] == [f"m{i}" for i in range(10, HISTORY + 10)]
    assert welcome["users"] == ["ada"] and welcome["you"] == "ada"
    assert set(messages[0]) == {"type", "id", "from", "text", "ts"}


def test_a_refused_message_takes_no_id():
    room = Room()
    room.join("ada")
    with pytest.raises(ProtocolError):
        room.post("ada", "", ts=0.0)
    assert room.post("ada", "ok", ts=0.0)["id"] == 1


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(capacity=10, rate=5)
    assert all(bucket.take(100.0) for _ in range(10))
    assert not bucket.take(100.0)
    assert bucket.take(100.2)  # 0.2 s at 5/s: one token back
    assert not bucket.take(100.2)
    assert [bucket.take(101.2 + i * 0.2) for i in range(20)].count(True) == 20  # steady 5/s
    assert sum(bucket.take(200.0) for _ in range(15)) == 10  # refilled, capped at the burst
