"""LoopThread: a loop on its own thread, started with a handshake, stopped without leftovers."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref

import pytest

from workshop_lib.server.loop import LoopThread


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


def test_an_exception_in_a_callback_is_logged_not_printed(caplog, capfd):
    loop = LoopThread("test-handler")
    loop.start()
    try:

        def boom() -> None:
            raise ValueError("from a callback")

        with caplog.at_level(logging.DEBUG):
            loop.loop.call_soon_threadsafe(boom)
            loop.run(asyncio.sleep(0))  # scheduled after boom: boom has run when this returns
    finally:
        loop.stop()
    [record] = [r for r in caplog.records if r.name == "workshop_lib.server.loop"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("Exception in callback")
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert not [r for r in caplog.records if r.name == "asyncio"]
    assert capfd.readouterr().err == ""


def test_a_bare_create_task_would_be_collected(caplog):
    """Why a TaskOwner keeps its tasks (tests/test_tasks.py): asyncio keeps a pending task
    only weakly."""
    loop = LoopThread("test-bare-task")
    loop.start()

    async def orphan(waiter: asyncio.Future[None]) -> None:
        await waiter

    async def main() -> bool:
        waiter = asyncio.get_running_loop().create_future()
        ref = weakref.ref(waiter)
        asyncio.get_running_loop().create_task(orphan(waiter))
        del waiter
        await asyncio.sleep(0)
        gc.collect()
        return ref() is None

    try:
        with caplog.at_level(logging.ERROR, logger="workshop_lib.server.loop"):
            assert loop.run(main())
    finally:
        loop.stop()
    # Its destruction is reported, through the loop's handler.
    assert "Task was destroyed but it is pending!" in caplog.text
