"""The ball lesson's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from tests.test_checks import run_solution
from workshop_lib.checks.ball import CHECK_RATE, q1, q2


def test_q1_accepts_the_solution():
    result = run_solution("02_count_frames.py")
    assert result.ok, result.message


async def says_sixty(url, seconds):
    return 60.0


async def counts_without_dividing(url, seconds):
    frames = 0
    async with connect(url) as websocket:
        async for _ in websocket:
            frames += 1
            if frames >= CHECK_RATE * seconds:
                return frames


def not_async(url, seconds):
    return CHECK_RATE


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (says_sixty, f"sends {CHECK_RATE} frames a second, you measured 60.0"),
        (counts_without_dividing, "you measured 50.0"),
        (not_async, "async def"),
    ],
)
def test_q1_rejects_wrong_counters(answer, says):
    result = q1.check(answer)
    assert not result.ok
    assert says in result.message


def test_q2_accepts_the_solution():
    result = run_solution("02_steer.py")
    assert result.ok, result.message


async def pauses_where_it_is(url):
    async with connect(url) as websocket:
        await websocket.recv()
        await websocket.send(json.dumps({"type": "ball.control", "paused": True}))


async def steers_but_never_pauses(url):
    async with connect(url) as websocket:
        await websocket.recv()
        await websocket.send(json.dumps({"type": "ball.kick", "dx": 1.0, "dy": 1.0}))


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (pauses_where_it_is, "from the nearest corner"),
        (steers_but_never_pauses, "still moving"),
    ],
)
def test_q2_rejects_wrong_steering(answer, says):
    result = q2.check(answer)
    assert not result.ok
    assert says in result.message
