"""A ticker that keeps its schedule: ``rate`` calls a second, on the running event loop.

    ticker = Ticker(60.0, on_tick)     # on_tick(steps): 1 on time, more after a stall
    ticker.start()                     # on the loop; a task of its own
    await ticker.stop()

It sleeps until each tick's *scheduled* time, not for a fixed period after the last one's
work: a fixed sleep adds the work and the timer's lateness to every tick, and 60 Hz drifts to
about 43 Hz. More than a tick late (the machine stalled), it does not make up with a burst of
calls: the next call says how many ticks were due (``steps``), so the caller can simulate
them all and send only the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

__all__ = ["Ticker"]


class Ticker:
    """Calls ``on_tick(steps)`` ``rate`` times a second, drift-free, until stopped.

    ``steps``: the ticks due since the last call (1, or more after a stall). ``on_tick`` runs
    on the loop and must not block; an exception from it ends the ticker.
    """

    def __init__(self, rate: float, on_tick: Callable[[int], None], name: str = "ticker") -> None:
        if not 0 < rate < math.inf:
            raise ValueError(f"rate must be a number of ticks a second above 0, not {rate!r}")
        self.rate = rate
        self.on_tick = on_tick
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether it ticks (started and not stopped)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start ticking on the running loop (nothing if it ticks already)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop ticking; returns once no call can follow."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate
        started = loop.time()
        tick = 0
        while True:
            tick += 1
            delay = started + tick * period - loop.time()
            steps = 1
            if delay < -period:
                missed = int(-delay / period)
                steps += missed
                tick += missed
            # Await on every tick, even a late one: a ticker that only sleeps when early
            # would starve every other task on the loop (reads, new connections, closes) as
            # soon as one tick's work takes longer than a tick.
            await asyncio.sleep(max(delay, 0.0))
            self.on_tick(steps)
