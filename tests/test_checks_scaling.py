"""Lesson 06's exercise checks, against the shipped solutions and wrong answers, with a real
redis-server (each check starts its own)."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from tests.test_checks import run_solution
from workshop_lib.checks.scaling import q1, q2


@pytest.fixture(autouse=True)
def _needs_redis(redis_url):
    """The checks start their own Redis; this skips (or, in CI, fails) without one."""


@pytest.mark.parametrize("solution", ["06_follow.py", "06_relay.py"])
def test_the_solutions_pass(solution):
    result = run_solution(solution)
    assert result.ok, result.message


def follower(send_since: bool, read_history: bool):
    async def follow_room(urls, want):
        got, last_id = [], None
        for url in urls:
            async with connect(url, proxy=None) as websocket:
                join = {"type": "chat.join", "name": "reader"}
                if send_since and last_id is not None:
                    join["since"] = last_id
                await websocket.send(json.dumps(join))
                welcome = json.loads(await websocket.recv())
                if read_history and last_id is not None:
                    got += [(m["id"], m["text"]) for m in welcome["history"]]
                async for raw in websocket:
                    event = json.loads(raw)
                    if event["type"] == "chat.message":
                        got.append((event["id"], event["text"]))
                        last_id = event["id"]
                    if len(got) >= want:
                        return got
        return got

    return follow_room


async def stays_on_the_first(urls, want):
    async with connect(urls[0], proxy=None) as websocket:
        await websocket.send(json.dumps({"type": "chat.join", "name": "reader"}))
        async for _ in websocket:
            pass
    return []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (follower(send_since=False, read_history=True), "came twice"),
        (follower(send_since=True, read_history=False), "4 to 6 were said while you moved"),
        (stays_on_the_first, "never connected to the second address"),
    ],
    ids=["no since", "history ignored", "no second address"],
)
def test_q1_says_what_went_wrong(answer, reason):
    result = q1.check(answer)
    assert not result.ok
    assert reason in result.message, result.message


def reader(start: str, advance: bool):
    async def relay(redis, stream, after, deliver):
        last = after if start == "after" else start
        while True:
            reply = await redis.xread({stream: last}, block=1000)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    deliver(fields["text"])
                    if advance:
                        last = entry_id if start != "$ always" else "$"

    return relay


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (reader("$", advance=True), "e3, e4 and e5 were in the stream before you started"),
        (reader("after", advance=False), "every XREAD asked for what comes after"),
        (reader("0", advance=True), "you delivered e1 and e2 too"),
    ],
    ids=["from now", "never advances", "from the top"],
)
def test_q2_says_what_went_wrong(answer, reason):
    result = q2.check(answer)
    assert not result.ok
    assert reason in result.message, result.message


async def reads_from_after(redis, stream, after, deliver):
    last = after
    while True:
        reply = await redis.xread({stream: after}, block=1000)  # `after`, not `last`
        for _stream, entries in reply:
            for entry_id, fields in entries:
                deliver(fields["text"])
                last = entry_id  # noqa: F841 (kept up to date, and never used)


def test_q2_says_the_reads_asked_from_after_and_not_from_last():
    result = q2.check(reads_from_after)
    assert not result.ok
    assert "every XREAD asked for what comes after" in result.message, result.message
    assert "the id you started from" in result.message
    assert "set `last`" not in result.message  # the learner did that already


def test_q2_wants_a_coroutine():
    assert "async def" in q2.check(lambda redis, stream, after, deliver: None).message
