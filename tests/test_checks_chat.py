"""The chat lesson's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast

from tests.test_checks import run_solution
from workshop_lib.checks.chat import q1, q2, q3


def test_q1_accepts_the_solution():
    result = run_solution("03_bot.py")
    assert result.ok, result.message


def chatty(text, sender, users):
    return "I heard you"


def no_time(text, sender, users):
    return {"!hello": f"hello, {sender}!", "!users": ", ".join(users)}.get(text)


def rude(text, sender, users):
    return {"!hello": "hello!", "!users": ", ".join(users), "!time": "12:00:00"}.get(text)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (chatty, "should be 'hello, ada!', not 'I heard you'"),
        (no_time, '!time should answer like "14:05:09", not None'),
        (rude, "should be 'hello, ada!', not 'hello!'"),
    ],
)
def test_q1_rejects_wrong_replies(answer, says):
    result = q1.check(answer)
    assert not result.ok
    assert says in result.message


def test_q2_accepts_the_solution():
    result = run_solution("03_count_messages.py")
    assert result.ok, result.message


async def never_joins(url, seconds):
    return {"ada": 3, "bob": 2, "cy": 1}


async def counts_everything(url, seconds):
    counts = {}
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "counter"}))
        try:
            async with asyncio.timeout(seconds):
                async for message in websocket:
                    name = json.loads(message).get("name") or json.loads(message).get("from")
                    if name:
                        counts[name] = counts.get(name, 0) + 1
        except TimeoutError:
            pass
    return counts


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (never_joins, "never joined the room"),
        (counts_everything, "you counted"),
    ],
)
def test_q2_rejects_wrong_counters(answer, says):
    result = q2.check(answer)
    assert not result.ok
    assert says in result.message


async def checks_the_clock_inside_the_loop(url, seconds):
    counts = {}
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "counter"}))
        start = time.perf_counter()
        async for message in websocket:  # in a quiet room, the next message never comes
            event = json.loads(message)
            if event["type"] == "chat.message":
                counts[event["from"]] = counts.get(event["from"], 0) + 1
            if time.perf_counter() - start >= seconds:
                break
    return counts


def test_q2_says_the_room_went_quiet_while_the_loop_waited_and_costs_seconds():
    started = time.monotonic()
    result = q2.check(checks_the_clock_inside_the_loop)
    took = time.monotonic() - started
    assert not result.ok
    assert "the room went quiet after" in result.message, result.message
    assert "still waiting for a message: check the clock outside `async for`" in result.message
    assert took < 8, took


async def recv_with_a_timeout(url, seconds):
    counts = {}
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "counter"}))
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            try:
                event = json.loads(await websocket.recv(timeout=0.5))  # the sync client's
            except TimeoutError:
                continue
            if event["type"] == "chat.message":
                counts[event["from"]] = counts.get(event["from"], 0) + 1
    return counts


def test_q2_reports_the_learners_exception_before_anything_else():
    result = q2.check(recv_with_a_timeout)
    assert not result.ok
    assert result.message.startswith("your code raised TypeError:"), result.message
    assert "unexpected keyword argument 'timeout'" in result.message
    assert "asyncio.wait_for(websocket.recv(), left)" in result.message
    assert "never joined" not in result.message


def test_q2_hint_names_the_asyncio_way_to_wait_with_a_timeout():
    assert "asyncio.wait_for(websocket.recv(), left)" in q2.hint()
    assert "`recv()` with a timeout" not in q2.hint()


def test_q3_accepts_the_solution():
    result = run_solution("03_chat_handler.py")
    assert result.ok, result.message


def _handler(*, awaits_each=False, unregisters_in_finally=True, announces_leave=True):
    """A chat handler with one of the mistakes the check must name (or none)."""
    members = set()

    async def send_all(text):
        if awaits_each:
            for member in list(members):
                await member.send(text)
        else:
            broadcast(members, text)

    async def handler(websocket):
        name = await websocket.recv()
        members.add(websocket)
        await send_all(f"{name} joined")

        async def leave():
            members.discard(websocket)
            if announces_leave:
                await send_all(f"{name} left")

        try:
            async for text in websocket:
                await send_all(f"{name}: {text}")
            if not unregisters_in_finally:
                await leave()  # only after a clean close: a vanished member stays
        finally:
            if unregisters_in_finally:
                await leave()

    return handler, members


@pytest.mark.parametrize(
    ("mistake", "says"),
    [
        ({"awaits_each": True}, "one slow member holds up the room"),
        ({"unregisters_in_finally": False}, "'sleepy left' never came"),
        ({"announces_leave": False}, "'bob left' never came"),
    ],
)
def test_q3_names_the_mistake(mistake, says):
    handler, members = _handler(**mistake)
    started = time.monotonic()
    result = q3.check(handler, members)
    assert not result.ok
    assert says in result.message, result.message
    assert time.monotonic() - started < 10


def test_q3_wants_the_members_set():
    handler, _ = _handler()
    assert "pass your members set too" in q3.check(handler).message
