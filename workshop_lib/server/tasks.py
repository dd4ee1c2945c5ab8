"""Owning background tasks: each one kept until done, its failure logged, all cancelled at the end.

asyncio keeps only a weak reference to a task, so a fire-and-forget task can be collected in
the middle of its work; nobody awaits it, so its exception goes unseen until the garbage
collector finds it; and a plain ``task.cancel()`` can be lost (see :func:`cancel_tasks`). A
:class:`TaskOwner` does all three right, on the loop it runs on::

    tasks = TaskOwner("chat")
    tasks.spawn(follow_forever(), name="chat-follow")   # kept, and logged if it fails
    await tasks.cancel(tasks.named("chat-follow"))     # some of them
    await tasks.close()                                 # all that are left

Each lesson gets one from its server, as its context (:class:`~workshop_lib.lesson.LessonContext`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

__all__ = ["TaskOwner", "cancel_tasks"]

logger = logging.getLogger("workshop_lib.server.tasks")


async def cancel_tasks(tasks: Iterable[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    """Cancel ``tasks`` and wait until each has ended, for at most ``timeout`` seconds.

    A cancel can be lost, and the task runs on into its next await. redis-py sends every
    command through ``asyncio.wait_for`` (its socket timeout), and on Python 3.11 that drops
    a cancel which lands after the send finished but before ``wait_for`` resumes; on a busy
    loop a cancel sent from a timer lands there every time, for seconds on end. So a task
    still running after a first cancel is cancelled again on each turn of the loop, which
    reaches it at another point. What the tasks raise on the way out is retrieved, not
    reported: an error while stopping is not news.
    """
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=min(0.1, timeout))
    while pending and loop.time() < deadline:
        for _turn in range(20):
            for task in pending:
                task.cancel()
            await asyncio.sleep(0)  # one turn of the loop
            pending = {task for task in pending if not task.done()}
            if not pending:
                break
        if pending:
            _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: asyncio would otherwise log it when collected
    if pending:
        logger.warning(
            "%d task(s) still running %g s after being cancelled: %s",
            len(pending),
            timeout,
            ", ".join(sorted(task.get_name() for task in pending)),
        )


class TaskOwner:
    """The background tasks of one owner (``name``, for the log), on one event loop.

    Tasks are kept until done (asyncio only keeps a weak reference). One that fails is logged
    once, at ERROR with its traceback, unless it was being cancelled. :meth:`cancel` and
    :meth:`close` cancel with :func:`cancel_tasks`, so a swallowed cancel does not leave a
    task running.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cancelling: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Start ``coro`` as a task on the running loop, owned here; returns the task.

        After :meth:`close` it is refused (RuntimeError): nothing would cancel it.
        """
        if self.closed:
            coro.close()
            raise RuntimeError(f"{self.name}: its tasks were closed; nothing may start now")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        cancelling = task in self._cancelling
        self._cancelling.discard(task)
        if task.cancelled():
            return
        exception = task.exception()  # retrieved here, whatever follows: logged once
        if exception is not None and not cancelling:
            logger.error(
                "%s: task %r failed",
                self.name,
                task.get_name(),
                exc_info=(type(exception), exception, exception.__traceback__),
            )

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks still running."""
        return list(self._tasks)

    def named(self, name: str) -> list[asyncio.Task[Any]]:
        """The running tasks spawned with ``name``."""
        return [task for task in self._tasks if task.get_name() == name]

    async def cancel(self, tasks: Iterable[asyncio.Task[Any]], timeout: float = 5.0) -> None:
        """Cancel ``tasks`` (some of this owner's) and wait until they have ended."""
        tasks = list(tasks)
        self._cancelling.update(task for task in tasks if not task.done())
        await cancel_tasks(tasks, timeout)

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel every task left and wait for them; no task may start after this."""
        self.closed = True  # so a task cannot start another on its way out
        running = [task for task in self._tasks if not task.done()]
        if running:
            await self.cancel(running, timeout)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<TaskOwner {self.name!r}: {len(self._tasks)} task(s)>"
