"""One way to own a task: TaskOwner keeps, logs and cancels; each lesson gets one as its context."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref

import pytest

from workshop_lib import start_server
from workshop_lib.lesson import Lesson, LessonContext
from workshop_lib.server.tasks import TaskOwner

TASKS_LOGGER = "workshop_lib.server.tasks"


def test_a_spawned_task_survives_garbage_collection_and_completes():
    async def orphan(waiter: asyncio.Future[None], finished: list[bool]) -> None:
        await waiter  # task -> coroutine -> waiter -> task: a cycle nothing else refers to
        finished.append(True)

    async def main() -> list[bool]:
        owner = TaskOwner("test")
        finished: list[bool] = []
        waiter = asyncio.get_running_loop().create_future()
        ref = weakref.ref(waiter)
        owner.spawn(orphan(waiter, finished))
        del waiter
        await asyncio.sleep(0)  # the task is now suspended on the waiter
        gc.collect()
        waiter = ref()
        assert waiter is not None, "the owner let its task be collected"
        waiter.set_result(None)
        await asyncio.sleep(0.01)
        assert len(owner) == 0  # done: no longer kept
        return finished

    assert asyncio.run(main()) == [True]


def test_a_failed_task_is_logged_once_with_its_traceback(caplog):
    async def fails() -> None:
        raise ValueError("nobody awaits me")

    async def main() -> None:
        owner = TaskOwner("lesson 'test'")
        owner.spawn(fails(), name="failing")
        await asyncio.sleep(0.01)
        gc.collect()  # the task is gone: asyncio would say "never retrieved" here if unread

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1, [r.getMessage() for r in records]
    [record] = records
    assert record.name == TASKS_LOGGER
    assert record.getMessage() == "lesson 'test': task 'failing' failed"
    assert record.exc_info is not None and record.exc_info[0] is ValueError


def test_close_cancels_and_awaits_every_task_and_refuses_new_ones(caplog):
    cancelled: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def fails_on_the_way_out() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("a closed connection, while stopping") from None

    async def main() -> tuple[list[bool], str]:
        owner = TaskOwner("test")
        tasks = [owner.spawn(forever("a")), owner.spawn(forever("b"))]
        tasks.append(owner.spawn(fails_on_the_way_out()))
        await asyncio.sleep(0)
        await owner.close()
        done = [task.done() for task in tasks]
        late = forever("late")
        with pytest.raises(RuntimeError, match="closed") as refused:
            owner.spawn(late)
        return done, str(refused.value)

    with caplog.at_level(logging.ERROR):
        done, _ = asyncio.run(main())
    assert done == [True, True, True]
    assert sorted(cancelled) == ["a", "b"]  # "late" never ran
    # An error on the way out of a cancel is not news at a stop.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_cancel_ends_a_task_that_swallows_cancels():
    # A cancel can be lost (redis-py under Python 3.11's wait_for drops one that lands
    # mid-command): a task that swallows two must still end, at once, not at a timeout.
    swallowed: list[int] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if len(swallowed) == 2:
                    raise
                swallowed.append(1)

    async def main() -> tuple[bool, float]:
        owner = TaskOwner("test")
        task = owner.spawn(stubborn(), name="stubborn")
        other = owner.spawn(asyncio.sleep(3600), name="other")
        await asyncio.sleep(0)
        started = time.monotonic()
        await owner.cancel(owner.named("stubborn"))
        took = time.monotonic() - started
        assert not other.done()  # only the tasks named
        await owner.close()
        return task.cancelled(), took

    ended, took = asyncio.run(main())
    assert ended and swallowed == [1, 1]
    assert took < 1.0, f"{took:.2f} s to end a task that swallowed two cancels"


class Spawner(Lesson):
    """A lesson written outside: it spawns a task at start and forgets it at stop."""

    name = "spawner"

    def __init__(self) -> None:
        self.context_at_start: LessonContext | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopped = False

    async def start(self) -> None:
        self.context_at_start = self.context
        self.task = self.context.spawn(asyncio.sleep(3600), name="spawner-forever")

    async def stop(self) -> None:
        self.stopped = True  # nothing cancelled here: the server's context does it


def test_the_server_hands_each_lesson_a_context_and_ends_its_tasks_after_stop():
    lesson = Spawner()
    with start_server(port=0, lessons=[lesson]):
        assert isinstance(lesson.context_at_start, LessonContext)
        assert lesson.context is lesson.context_at_start
        assert lesson.task is not None and not lesson.task.done()
    assert lesson.stopped
    assert lesson.task.cancelled()
    assert lesson.context.closed and len(lesson.context) == 0
    # A second run is a new context: the closed one would refuse its tasks.
    first = lesson.context_at_start
    with start_server(port=0, lessons=[lesson]):
        assert lesson.context_at_start is not first and not lesson.context.closed
        assert lesson.task is not None and not lesson.task.done()
    assert lesson.task.cancelled()
