"""Lesson 05's exercise checks, against the shipped solutions and wrong answers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from tests.test_checks import run_solution
from workshop_lib.checks.realtime import q1, q2
from workshop_lib.realtime import text_session


def test_q1_accepts_the_solution():
    result = run_solution("05_ask.py")
    assert result.ok, result.message


async def _events(websocket, text, *, ask_for_text=True):
    if ask_for_text:  # the service answers in audio unless asked for text
        await websocket.send(json.dumps(text_session()))
    await websocket.send(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
    )
    await websocket.send(json.dumps({"type": "response.create"}))
    async for message in websocket:
        yield json.loads(message)


async def last_delta_only(url, text):
    async with connect(url, proxy=None) as websocket:
        async for event in _events(websocket, text):
            if event["type"] == "response.output_text.delta":
                answer = event["delta"]
            elif event["type"] == "response.done":
                return answer


async def list_of_deltas(url, text):
    async with connect(url, proxy=None) as websocket:
        deltas = []
        async for event in _events(websocket, text):
            if event["type"] == "response.output_text.delta":
                deltas.append(event["delta"])
            elif event["type"] == "response.done":
                return deltas


async def never_stops(url, text):
    async with connect(url, proxy=None) as websocket:
        answer = ""
        async for event in _events(websocket, text):
            if event["type"] == "response.output_text.delta":
                answer += event["delta"]
        return answer


async def forgets_to_ask_for_text(url, text):
    async with connect(url, proxy=None) as websocket:
        answer = ""
        async for event in _events(websocket, text, ask_for_text=False):
            if event["type"] == "response.output_text.delta":
                answer += event["delta"]
            elif event["type"] == "response.done":
                return answer


async def never_asks(url, text):
    async with connect(url, proxy=None) as websocket:
        await websocket.recv()
        return ""


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (last_delta_only, "you returned only the last delta, 'pieces.'"),
        (list_of_deltas, "you returned a list"),
        (never_stops, "your loop was still waiting: return when"),
        (never_asks, "the server never got a response.create"),
        (forgets_to_ask_for_text, "the answer came in audio"),
    ],
)
def test_q1_rejects_wrong_answers_in_a_few_seconds(answer, says):
    started = time.monotonic()
    result = q1.check(answer)
    assert not result.ok
    assert says in result.message, result.message
    assert time.monotonic() - started < 8  # a wrong answer costs seconds, not a minute


def test_q1_wants_an_async_function():
    result = q1.check(lambda url, text: "")
    assert not result.ok and "async def" in result.message


def test_q2_accepts_the_solution():
    result = run_solution("05_reverse.py")
    assert result.ok, result.message


def test_q2_works_when_called_on_a_running_loop():
    """As in a notebook cell, which ipykernel runs on its event loop (the kernel test,
    tests/test_exercises_in_kernel.py, shows it in a real kernel)."""
    from tests.test_checks import solution_namespace

    namespace, _check = solution_namespace("05_reverse.py")

    async def cell():
        return q2.check(namespace["reverse_responder"])  # a plain call, as a cell makes it

    result = asyncio.run(cell())
    assert result.ok, result.message


def one_string(text):
    return " ".join(reversed(text.split()))


def forwards(text):
    yield from text.split()


def numbers(text):
    yield from range(3)


def crashes(text):
    raise KeyError("oops")


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (one_string, "the client got one delta"),
        (forwards, "they should be ['learner', 'a', 'for', 'step', 'small', 'one']"),
        (numbers, "yielded int, not text"),
        (crashes, "the responder raised KeyError"),
    ],
)
def test_q2_rejects_wrong_responders(answer, says):
    result = q2.check(answer)
    assert not result.ok
    assert says in result.message, result.message
