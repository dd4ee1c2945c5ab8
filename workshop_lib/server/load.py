"""How loaded the server is: how late its event loop runs, and how much CPU it uses.

Too many clients do not always show as skipped frames: the ball skips a client only when
its connection backs up, and 2,000 clients that all read keep every buffer empty while the
loop spends its whole core sending to them. What does show is that the loop runs *late*:
a task that sleeps 0.25 s wakes up 0.25 s plus however long the loop was busy::

    load = LoopLoad()
    await load.start()        # on the server's loop
    load.stats()              # {"lag_ms": 3.1, "cpu_percent": 12.0}
    await load.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

__all__ = ["LoopLoad"]


class LoopLoad:
    """Measures the loop's lag every ``interval`` seconds; keeps the last ``window`` seconds."""

    def __init__(self, interval: float = 0.25, window: float = 5.0) -> None:
        self.interval = interval
        self._lags: deque[float] = deque(maxlen=max(1, round(window / interval)))
        # (wall, CPU) at the last stats(); the first call measures from here.
        self._cpu: tuple[float, float] | None = (time.monotonic(), time.process_time())
        self._cpu_percent = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start measuring (on the loop to be measured)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._measure(), name="loop-load")

    async def stop(self) -> None:
        """Stop measuring."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self._lags.append(max(0.0, loop.time() - due))

    @property
    def lag(self) -> float:
        """The worst lag, in seconds, over the last ``window`` seconds."""
        return max(self._lags, default=0.0)

    def stats(self) -> dict[str, float]:
        """``lag_ms``: the loop's worst lateness lately; ``cpu_percent``: this process's CPU
        since the previous call (100 is one core: all the loop can have)."""
        now, cpu = time.monotonic(), time.process_time()
        if self._cpu is not None and now - self._cpu[0] >= 0.5:
            self._cpu_percent = 100 * (cpu - self._cpu[1]) / (now - self._cpu[0])
        if self._cpu is None or now - self._cpu[0] >= 0.5:
            self._cpu = (now, cpu)  # a poll every second: each figure spans about a second
        return {"lag_ms": round(self.lag * 1000, 1), "cpu_percent": round(self._cpu_percent, 1)}
