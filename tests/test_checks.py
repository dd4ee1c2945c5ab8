"""Every exercise check, against right answers (the shipped solutions) and wrong ones."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from workshop_lib.checks import CheckResult
from workshop_lib.checks.echo import ECHO_DELAYS_MS, q1, q2

SOLUTIONS = Path(__file__).resolve().parent.parent / "workshop_lib" / "checks" / "solutions"


def solution_namespace(name: str) -> tuple[dict[str, Any], ast.expr]:
    """A solution file run up to its last line, its own `qN.check(...)`, as `%load` and
    Shift-Enter would right after a kernel restart: in an empty namespace, so it must import
    everything it uses. Returns what it defined, and that last line, not yet run."""
    path = SOLUTIONS / name
    tree = ast.parse(path.read_text(), str(path))
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), f"{name} must end with its check"
    namespace: dict[str, Any] = {}
    exec(compile(tree, str(path), "exec"), namespace)
    return namespace, last.value


def run_solution(name: str) -> CheckResult:
    """Run a solution file whole (:func:`solution_namespace`); returns the value of its
    last line, its own `qN.check(...)`, so each check runs once per test."""
    namespace, last = solution_namespace(name)
    result = eval(compile(ast.Expression(last), name, "eval"), namespace)
    assert isinstance(result, CheckResult), f"{name}'s last line returned {result!r}"
    return result


# -- q1: the shout handler -------------------------------------------------------------------


def test_q1_accepts_the_solution():
    result = run_solution("01_shout.py")
    assert result.ok, result.message


async def plain_echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def answers_once(websocket):
    message = await websocket.recv()
    await websocket.send(message.upper() + "!")


async def never_answers(websocket):
    async for _message in websocket:
        pass


async def crashes(websocket):
    async for message in websocket:
        await websocket.send(message.upper() + 1)


def sync_handler(websocket):
    return None


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (plain_echo, "expected 'HELLO!', got 'hello'"),
        (answers_once, "your handler returned after one message"),
        (never_answers, "no reply within 3 s"),
        (crashes, 'your handler raised TypeError: can only concatenate str (not "int") to str'),
        (sync_handler, "async def"),
    ],
)
def test_q1_rejects_wrong_handlers(answer, says):
    result = q1.check(answer)
    assert isinstance(result, CheckResult)
    assert not result.ok
    assert says in result.message


def test_q1_notices_the_placeholder():
    from workshop_lib.checks import ____

    async def unfinished(websocket):
        async for _message in websocket:
            await websocket.send(____)

    result = q1.check(unfinished)
    assert not result.ok
    assert "replace every ____" in result.message


def test_a_blank_mentioned_in_a_comment_or_a_string_is_not_a_blank():
    async def finished(websocket):
        # I replaced the ____ with the reply
        async for message in websocket:
            await websocket.send(message.upper() + "!" + "____"[:0])

    result = q1.check(finished)
    assert result.ok, result.message


# -- q2: the round-trip timer ----------------------------------------------------------------


def test_q2_accepts_the_solution():
    result = run_solution("01_round_trips.py")
    assert result.ok, result.message


async def in_seconds(url, n):
    times = []
    async with connect(url) as websocket:
        for _ in range(n):
            start = time.perf_counter()
            await websocket.send("x")
            await websocket.recv()
            times.append(time.perf_counter() - start)
    return times


async def made_up(url, n):
    return [d + 5.0 for d in ECHO_DELAYS_MS]


async def send_only(url, n):
    times = []
    async with connect(url) as websocket:
        for _ in range(n):
            start = time.perf_counter()
            await websocket.send("x")
            times.append((time.perf_counter() - start) * 1000)
        for _ in range(n):
            await websocket.recv()
    return times


async def too_few(url, n):
    return await in_seconds(url, n - 1)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (in_seconds, "look like seconds"),
        (made_up, "the server received 0 messages"),
        (send_only, "wait for each echo before the next send"),
        (too_few, "got 4 times"),
    ],
)
def test_q2_rejects_wrong_timers(answer, says):
    result = q2.check(answer)
    assert not result.ok
    assert says in result.message


async def waits_forever(url, n):
    async with connect(url) as websocket:
        await websocket.send("x")
        await websocket.recv()
        await websocket.recv()  # a second reply never comes


def test_q2_gives_up_on_a_coroutine_that_never_ends(monkeypatch):
    monkeypatch.setattr(q2, "timeout", 1.0)
    started = time.perf_counter()
    result = q2.check(waits_forever)
    assert not result.ok
    assert "did not finish within 1 s" in result.message
    assert time.perf_counter() - started < 5


async def sends_all_then_reads_all(url, n):
    times = []
    async with connect(url) as websocket:
        for _ in range(n):
            await websocket.send("x")
        for _ in range(n):
            start = time.perf_counter()
            await websocket.recv()
            times.append((time.perf_counter() - start) * 1000)
    return times


def test_q2_says_a_message_sent_before_the_last_echo_came_back():
    result = q2.check(sends_all_then_reads_all)
    assert not result.ok
    assert "message 2 reached the server before the echo of message 1" in result.message
    assert "wait for each echo before the next send" in result.message


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (q1, 'message.upper() + "!"'),
        (q1, "async for message in websocket"),
        (q2, "await websocket.recv()"),
        (q2, "(time.perf_counter() - start) * 1000"),
    ],
)
def test_the_hints_nudge_without_handing_over_the_answer(exercise, answer):
    assert answer in exercise.code  # it is the solution's ...
    assert answer not in exercise.hint()  # ... and the hint leaves it to the learner


def test_hint_and_solution_render():
    assert "perf_counter" in q2.hint()
    solution = q1.solution()
    assert "%load q1.code" in solution
    assert "message.upper()" in solution
    assert "white-space:pre-wrap" in solution._repr_html_()


def test_wait_until_polls_until_the_condition_holds_or_the_deadline_passes():
    import threading

    from workshop_lib.checks._base import wait_until

    assert wait_until(lambda: True, timeout=0)  # already true: no wait at all
    started = time.monotonic()
    assert not wait_until(lambda: False, timeout=0.2, interval=0.05)
    assert time.monotonic() - started >= 0.2  # it waited the whole timeout
    flag = threading.Event()
    threading.Timer(0.1, flag.set).start()  # what a check waits for happens on other threads
    assert wait_until(flag.is_set, timeout=10)
    # One last look after the deadline: a condition that became true meanwhile counts.
    looks: list[float] = []
    assert wait_until(lambda: looks.append(time.monotonic()) or len(looks) == 2, 0.01, 0.05)
