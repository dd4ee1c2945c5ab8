"""The chat lesson's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from tests.test_checks import run_solution
from workshop_lib.checks.chat import q1, q2


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
