"""Notebook 04's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.test_checks import run_solution
from workshop_lib.checks._base import Failed
from workshop_lib.checks.auth import q1, q2
from workshop_lib.clients.backoff import backoff_delays


def test_q1_accepts_the_solution():
    result = run_solution("04_login.py")
    assert result.ok, result.message


async def too_eager(url, origin, token, text):
    async with connect(url, origin=origin) as websocket:
        await websocket.send(json.dumps({"type": "auth", "token": token}))
        await websocket.send(text)  # before auth.ok: the next message read is the auth.ok
        return await websocket.recv()


async def by_header(url, origin, token, text):
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(text)
        return await ws.recv()


async def fixed_token(url, origin, token, text):
    async with connect(url, origin=origin) as websocket:
        await websocket.send(json.dumps({"type": "auth", "token": "s3cret"}))
        await websocket.recv()
        await websocket.send(text)
        return await websocket.recv()


def not_async(url, origin, token, text):
    return text


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (too_eager, "read the auth.ok first"),
        (by_header, "which a browser cannot do"),
        (fixed_token, "your code raised ConnectionClosedError"),
        (not_async, "must be defined with `async def`"),
    ],
)
def test_q1_rejects_wrong_logins(answer, says):
    result = q1.check(answer)
    assert not result.ok and says in result.message, result.message


def test_q2_accepts_the_solution():
    result = run_solution("04_reconnect.py")
    assert result.ok, result.message


async def gives_up(url, count):
    ticks = []
    async with connect(url) as websocket:
        async for message in websocket:
            event = json.loads(message)
            if event["type"] == "ball.state":
                ticks.append(event["tick"])
                if len(ticks) == count:
                    break
    return ticks


def test_q2_rejects_a_client_that_stops_at_the_restart():
    result = q2.check(gives_up)
    assert not result.ok
    assert "never tried to connect again: reconnect after the drop" in result.message
    assert "its server went away" in result.message, result.message


def reconnecting(waits):
    """collect_ticks that reconnects after each drop or refusal, waiting next(waits())."""

    async def collect_ticks(url, count):
        ticks = []
        delays = waits()
        while len(ticks) < count:
            try:
                async with connect(url) as websocket:
                    delays = waits()
                    async for message in websocket:
                        ticks.append(json.loads(message)["tick"])
                        if len(ticks) == count:
                            break
            except (OSError, ConnectionClosed):
                pass
            if len(ticks) < count:
                await asyncio.sleep(next(delays))
        return ticks

    return collect_ticks


async def fresh_backoff_each_time(url, count):
    """Backoff's delays, but a fresh backoff_delays() before every wait: always its first."""
    waits = reconnecting(lambda: (next(backoff_delays()) for _ in itertools.count()))
    return await waits(url, count)


@pytest.mark.parametrize(
    ("waits", "says"),
    [
        (lambda: itertools.repeat(1.0), "the waits between your client's attempts did not grow"),
        (lambda: (0.3 * 2**n for n in itertools.count()), "retried in step"),
        (lambda: itertools.repeat(0.0), "ms after a refused attempt: without a wait"),
    ],
    ids=["a fixed second", "doubling without jitter", "no wait at all"],
)
def test_q2_wants_backoff_with_jitter(waits, says):
    result = q2.check(reconnecting(waits))
    assert not result.ok
    assert says in result.message, result.message


def test_q2_rejects_a_fresh_backoff_before_every_wait():
    result = q2.check(fresh_backoff_each_time)
    assert not result.ok
    assert "did not grow" in result.message, result.message
    assert "start a fresh one only after a successful connect" in result.message


async def waits_after_the_drop(url, count):
    ticks = []
    try:
        async with connect(url) as websocket:
            async for message in websocket:
                ticks.append(json.loads(message)["tick"])
    finally:
        await asyncio.sleep(30)  # "wait for the server", and never connect again
    return ticks


def test_q2_says_the_server_restarted_and_the_client_never_came_back_within_seconds():
    started = time.monotonic()
    result = q2.check(waits_after_the_drop)
    assert not result.ok
    assert "its server went away" in result.message, result.message
    assert "your clients never came back" in result.message
    assert time.monotonic() - started < q2.timeout + 5  # the check gives up, never waits 30 s


# The copies' attempts as a busy machine timed them (a CI run under load): equal waits of
# 0.3, 0.6 and 1.2 s came out spread by up to 0.2 s, which the clock alone read as jitter.
LOADED_TRIES = [
    [0.0, 0.47, 0.85 + 0.47, 1.24 + 0.85 + 0.47],
    [0.0, 0.47, 0.87 + 0.47, 1.29 + 0.87 + 0.47],
    [0.0, 0.52, 0.91 + 0.52, 1.33 + 0.91 + 0.52],
    [0.0, 0.66, 0.68 + 0.66, 1.34 + 0.68 + 0.66],
    [0.0, 0.66, 0.68 + 0.66, 1.34 + 0.68 + 0.66],
]
TICKS = [list(range(q2.count))] * len(LOADED_TRIES)


def test_q2_judges_jitter_by_the_waits_asked_for_not_a_busy_clock():
    equal = [[0.3, 0.6, 1.2]] * len(LOADED_TRIES)
    with pytest.raises(Failed, match="retried in step"):
        q2._judge("the check ran copies", TICKS, LOADED_TRIES, equal)
    jittered = [[0.3 * f, 0.6 * f, 1.2 * f] for f in (0.9, 1.0, 1.1, 0.95, 1.05)]
    assert q2._judge("the check ran copies", TICKS, LOADED_TRIES, jittered).ok


def test_q2_notes_the_sleeps_each_copy_asks_for():
    """The check's loop tells asyncio.sleep's waits from websockets' own timers."""
    from workshop_lib.checks.auth import _COPY, _noting_attempts

    slept = {0: [], 1: []}
    loop = _noting_attempts({0: [], 1: []}, {0: 0, 1: 0}, slept)()

    async def copy(n, waits):
        _COPY.set(n)
        loop.call_later(5.0, lambda: None).cancel()  # a timer, not a sleep
        for wait in waits:
            await asyncio.sleep(wait)

    async def both():
        await asyncio.gather(copy(0, [0.01, 0.02]), copy(1, [0.03]))

    try:
        loop.run_until_complete(both())
    finally:
        loop.close()
    assert slept == {0: [0.01, 0.02], 1: [0.03]}
