"""An asyncio event loop on its own named daemon thread.

A notebook kernel already runs an event loop, and a *sync* client in a cell would block it:
if the server lived on that loop, the client would wait forever for a server that can no
longer run. So every server gets a loop of its own, on a thread of its own::

    loop = LoopThread("workshop-server")
    loop.start()
    result = loop.run(some_coroutine())   # blocks the caller, not the loop
    loop.stop()

The thread runs ``asyncio.run()``, so stopping it cancels whatever tasks are left and shuts
down async generators and the default executor, exactly as a script would.

Nothing the loop reports goes to stderr, where a notebook would show it in whatever cell runs
next: the loop's exception handler ("Exception in callback", "Task exception was never
retrieved", ...) logs through ``logging.getLogger("workshop_lib.server.loop")`` instead. And the
loop keeps a strong reference to every task :meth:`LoopThread.submit` makes until it is done,
since asyncio itself only keeps a weak one: a task whose caller dropped its future could
otherwise be garbage-collected in the middle of its work. Background tasks started on the
loop belong to an owner that ends them (:mod:`workshop_lib.server.tasks`: each lesson's
context).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

__all__ = ["LoopThread"]

logger = logging.getLogger("workshop_lib.server.loop")

T = TypeVar("T")


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An exception handler for ``loop.set_exception_handler()``: asyncio's default handler's
    message, logged at ERROR through ``workshop_lib.server.loop`` instead of ``asyncio``."""
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    details = [
        f"{key}: {value!r}"
        for key, value in sorted(context.items())
        if key not in ("message", "exception")  # the exception: exc_info, with its traceback
    ]
    exc_info = (
        (type(exception), exception, exception.__traceback__)
        if isinstance(exception, BaseException)
        else None
    )
    logger.error("%s", "\n".join([message, *details]), exc_info=exc_info)


class LoopThread:
    """A daemon thread running one asyncio event loop until :meth:`stop`.

    Usage: ``loop = LoopThread("name"); loop.start(); loop.run(coro); loop.stop()``.
    """

    # What makes each thread's loop: None is asyncio's own. ``serve --loop uvloop`` sets it
    # for its whole process; a notebook kernel never does, so its servers keep asyncio's.
    loop_factory: ClassVar[Callable[[], asyncio.AbstractEventLoop] | None] = None

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # strong references until done

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; only valid between :meth:`start` and :meth:`stop`."""
        if self._loop is None:
            raise RuntimeError(f"loop thread {self.name!r} is not running")
        return self._loop

    @property
    def alive(self) -> bool:
        """True while the thread and its loop are running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until its loop is running (the start handshake)."""
        if self._thread is not None:
            raise RuntimeError(f"loop thread {self.name!r} was already started")
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"loop thread {self.name!r} did not start within {timeout} s")

    def _main(self) -> None:
        # asyncio.run() with a loop factory (asyncio.run takes one only from Python 3.12).
        # Read on the class: a function stored there would bind to ``self`` if read here.
        with asyncio.Runner(loop_factory=type(self).loop_factory) as runner:
            runner.run(self._serve_until_stopped())

    async def _serve_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(log_loop_exception)
        self._loop = loop
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        # The leftovers, cancelled and awaited here rather than by asyncio.run()'s sweep.
        while self._tasks:
            leftovers = list(self._tasks)
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kept(self, coro: Coroutine[Any, Any, T]) -> T:
        """``await coro``, with the task running it kept until done."""
        task = asyncio.current_task()
        assert task is not None
        self._keep(task)
        return await coro

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any other thread; return its future.

        The task is kept until done even if the caller drops the future.
        """
        if not asyncio.iscoroutine(coro):
            raise TypeError("A coroutine object is required")
        return asyncio.run_coroutine_threadsafe(self._kept(coro), self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result (exceptions are re-raised here).

        Never call this from the loop's own thread: it would wait for itself.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run() called from its own thread; await instead")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"coroutine did not finish within {timeout} s") from None
        except BaseException:  # Kernel → Interrupt while waiting: the coroutine stops too
            future.cancel()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and join the thread. Safe to call twice, or before start."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"loop thread {self.name!r} did not stop within {timeout} s")
        self._loop = None
