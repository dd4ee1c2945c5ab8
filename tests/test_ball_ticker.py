"""The ball's ticker on its own (ball/ticker.py): on schedule under load, one call after a
stall, nothing after stop. A real event loop, its real clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from workshop_lib.ball.ticker import Ticker

RATE = 50.0


def test_work_in_each_tick_does_not_slow_the_schedule() -> None:
    """4 ms of work in each 20 ms tick: a ticker that sleeps a period after its work would
    make ~42 ticks a second; this one makes 50, counting the steps it reports."""

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        calls: list[tuple[float, int]] = []

        def work(n: int) -> None:
            calls.append((loop.time(), n))
            time.sleep(0.004)

        ticker = Ticker(RATE, work)
        started = loop.time()
        ticker.start()
        await asyncio.sleep(2.0)
        await ticker.stop()
        # The ticks counted up to the last call, against the time of that call: the time
        # after the sleep would also hold ticks that were due but not yet run.
        return sum(n for _, n in calls), calls[-1][0] - started

    ticks, elapsed = asyncio.run(main())
    # Never ahead of the clock. Behind it only by the last call's own lateness (a wake-up
    # that a busy machine delays), never by a drift that grows: a drifting ticker makes
    # about 84 of these 100.
    assert 0.93 * RATE * elapsed - 2 <= ticks <= RATE * elapsed + 1, (ticks, elapsed)


def test_a_stall_is_one_call_that_counts_the_missed_ticks() -> None:
    async def main() -> list[tuple[float, int]]:
        calls: list[tuple[float, int]] = []
        loop = asyncio.get_running_loop()
        ticker = Ticker(RATE, lambda n: calls.append((loop.time(), n)))
        ticker.start()
        while len(calls) < 3:
            await asyncio.sleep(0.005)
        time.sleep(0.3)  # the loop stalls for 15 ticks
        stalled_at = len(calls)
        while len(calls) < stalled_at + 4:
            await asyncio.sleep(0.005)
        await ticker.stop()
        return calls[stalled_at:]

    after = asyncio.run(main())
    # The tick that was asleep when the stall began wakes late (1), and the next call finds
    # the rest missed and reports them in one (not a burst of 14 calls)...
    assert after[0][1] + after[1][1] >= 14, after
    # ...and never a burst: a late tick, its catch-up and the next tick on time may come
    # within one period, never a fourth (a busy machine may stall the loop again: that stall
    # too is one call, counted the same way).
    times = [t for t, _ in after]
    assert all(times[i + 3] - times[i] >= 0.9 / RATE for i in range(len(times) - 3)), after


def test_stop_means_no_more_calls_and_start_is_idempotent() -> None:
    async def main() -> tuple[int, int, bool, bool]:
        calls: list[int] = []
        ticker = Ticker(RATE, calls.append)
        ticker.start()
        ticker.start()  # still one ticker: twice the calls would show it
        await asyncio.sleep(0.5)
        running = ticker.running
        await ticker.stop()
        stopped = sum(calls)
        await asyncio.sleep(0.2)
        return stopped, sum(calls), running, ticker.running

    stopped, later, running, after = asyncio.run(main())
    assert running and not after
    assert stopped == later  # nothing after stop() returned
    assert stopped <= RATE * 0.5 + 2, stopped  # one ticker, not two


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_rate_that_is_no_schedule_is_refused_at_once(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        Ticker(rate, lambda n: None)
