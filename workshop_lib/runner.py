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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """A daemon thread running one asyncio event loop until :meth:`stop`.

    Usage: ``loop = LoopThread("name"); loop.start(); loop.run(coro); loop.stop()``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()

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
        asyncio.run(self._serve_until_stopped())

    async def _serve_until_stopped(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any other thread; return its future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

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
