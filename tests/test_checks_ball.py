"""The ball lesson's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast

from tests.test_checks import run_solution, solution_namespace
from workshop_lib.checks.ball import CHECK_RATE, BroadcastTicker, q1, q2, q3


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


def test_q3_accepts_the_solution():
    result = run_solution("02_ticker.py")
    assert result.ok, result.message


def busy_q3() -> BroadcastTicker:
    """q3 on a machine too busy for 50 ticks a second: each tick's work takes 25 ms, more
    than the 20 ms between ticks, so even a drift-free ticker is late, through no fault
    of its own (on a busy machine, the work and the wake-ups take longer)."""
    busy = BroadcastTicker("q3")
    busy.work = 0.025
    return busy


def test_q3_accepts_a_drift_free_ticker_that_a_busy_machine_made_late():
    namespace, _check = solution_namespace("02_ticker.py")
    result = busy_q3().check(namespace["ticker"])
    assert result.ok, result.message
    assert "too busy" in result.message  # it was late, and the check said why it passed


def test_q3_on_a_busy_machine_still_finds_a_drifting_ticker():
    result = busy_q3().check(drifting_ticker)
    assert not result.ok
    assert "the ticker drifts" in result.message, result.message


async def drifting_ticker(clients, step, rate, seconds):
    for n in range(1, int(rate * seconds) + 1):
        step()
        broadcast(clients, json.dumps({"type": "tick", "n": n}))
        await asyncio.sleep(1 / rate)  # the work adds to the period


async def blocking_ticker(clients, step, rate, seconds):
    start = time.monotonic()
    for n in range(1, int(rate * seconds) + 1):
        step()
        broadcast(clients, json.dumps({"type": "tick", "n": n}))
        time.sleep(max(0.0, start + n / rate - time.monotonic()))  # on time, but blocking


async def first_client_only(clients, step, rate, seconds):
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = next(iter(clients))
    for n in range(1, int(rate * seconds) + 1):
        step()
        await first.send(json.dumps({"type": "tick", "n": n}))
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))


async def never_stops(clients, step, rate, seconds):
    while True:
        await asyncio.sleep(1 / rate)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (drifting_ticker, "the ticker drifts"),
        (blocking_ticker, "`time.sleep(...)` blocks the server"),
        (blocking_ticker, "every client stalls"),
        (first_client_only, "not the same ones"),
        (never_stops, "was still running after 4 s"),
    ],
)
def test_q3_rejects_wrong_tickers(answer, says):
    result = q3.check(answer)
    assert not result.ok
    assert says in result.message, result.message
