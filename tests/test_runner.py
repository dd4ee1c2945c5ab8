"""LoopThread: a loop on its own thread, started with a handshake, stopped without leftovers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from workshop_lib.runner import LoopThread


def test_runs_coroutines_on_its_own_named_thread():
    loop = LoopThread("test-loop")
    loop.start()
    try:

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert loop.run(where()) == "test-loop"
        assert loop.submit(where()).result(5) == "test-loop"
    finally:
        loop.stop()
    assert not loop.alive
    assert "test-loop" not in [t.name for t in threading.enumerate()]


def test_errors_are_raised_in_the_caller():
    loop = LoopThread("test-errors")
    loop.start()
    try:

        async def fails() -> None:
            raise ValueError("from the loop")

        with pytest.raises(ValueError, match="from the loop"):
            loop.run(fails())
    finally:
        loop.stop()


def test_timeout_cancels_the_coroutine():
    loop = LoopThread("test-timeout")
    loop.start()
    cancelled = threading.Event()
    try:

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError):
            loop.run(forever(), timeout=0.1)
        assert cancelled.wait(2)
    finally:
        loop.stop()


def test_stop_cancels_leftover_tasks_and_is_idempotent():
    loop = LoopThread("test-stop")
    loop.stop()  # before start: nothing to do
    loop.start()
    cancelled = threading.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop.submit(background())
    loop.stop()
    loop.stop()
    assert cancelled.is_set()
    with pytest.raises(RuntimeError, match="not running"):
        _ = loop.loop


def test_run_from_its_own_thread_is_refused_instead_of_deadlocking():
    loop = LoopThread("test-self")
    loop.start()
    try:

        async def nested() -> str:
            inner = asyncio.sleep(0)
            try:
                loop.run(inner)
            except RuntimeError as exc:
                return str(exc)
            return "no error"

        assert "own thread" in loop.run(nested())
    finally:
        loop.stop()


def test_cannot_start_twice():
    loop = LoopThread("test-twice")
    loop.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            loop.start()
    finally:
        loop.stop()
