"""What every exercise shares: the ``____`` placeholder, results, hints and solutions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import inspect
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..server import WorkshopServer, start_server

__all__ = [
    "SOLUTIONS_DIR",
    "CheckResult",
    "Exercise",
    "Text",
    "____",
    "not_async",
    "run_coroutine",
    "scratch_server",
]

T = TypeVar("T")

SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "solutions"


class _Placeholder:
    """The blank a learner replaces: ``____``. Using it anywhere is caught by the checks."""

    def __repr__(self) -> str:
        return "____"


____ = _Placeholder()


@dataclass(frozen=True)
class CheckResult:
    """The outcome of ``qN.check(...)``: true if correct, with a message either way."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{'Correct' if self.ok else 'Not yet'}: {self.message}"

    def _repr_html_(self) -> str:
        if self.ok:
            colour, word = "#1a7f37", "&#10004; Correct"
        else:
            colour, word = "#cf222e", "&#10008; Not yet"
        return f'<div style="color:{colour}"><b>{word}</b>: {html.escape(self.message)}</div>'


class Text(str):
    """A string a notebook shows as a short note (hints and solutions)."""

    def _repr_html_(self) -> str:
        return f'<div style="color:#0550ae;white-space:pre-wrap">{html.escape(self)}</div>'


class Exercise:
    """One exercise: subclasses define ``_check``, ``hint_text`` and ``solution_file``."""

    hint_text = ""
    solution_file = ""

    def check(self, answer: Callable[..., Any]) -> CheckResult:
        """Check ``answer``; returns a result, never raises."""
        if _uses_placeholder(answer):
            return CheckResult(
                False, "replace every ____ with your code, run that cell, then run this check again"
            )
        try:
            return self._check(answer)
        except Exception as exc:  # a learner's bug is feedback, not a crash of the notebook
            return CheckResult(False, f"your code raised {type(exc).__name__}: {exc}")

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        raise NotImplementedError

    def hint(self) -> Text:
        """A nudge in the right direction."""
        return Text(f"Hint: {self.hint_text}")

    def solution(self) -> Text:
        """Where the solution is, and how to load it into a cell."""
        path = SOLUTIONS_DIR / self.solution_file
        return Text(
            f"Solution: run `%load solutions/{self.solution_file}` in a new cell, "
            f"read it, then run it. It reads:\n\n{path.read_text()}"
        )


def _uses_placeholder(answer: object) -> bool:
    try:
        source = inspect.getsource(answer)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return "____" in source


def not_async(answer: Callable[..., Any], what: str) -> CheckResult | None:
    """A failed result if ``answer`` is not an ``async def`` function, else None."""
    if inspect.iscoroutinefunction(answer):
        return None
    return CheckResult(False, f"{what} must be defined with `async def`")


def scratch_server(port: int = 0, **options: Any) -> WorkshopServer:
    """A private server (on a free port), so checks never disturb the learner's own."""
    return start_server(port=port, name=f"check-{uuid.uuid4().hex[:8]}", **options)


def run_coroutine(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run a learner's coroutine on a loop and thread of its own, and return its result.

    The kernel's loop is busy running the cell that called the check. Raises
    ``concurrent.futures.TimeoutError`` after ``timeout`` seconds, without waiting for
    the coroutine: one that never ends must not hang the check.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1, "check-client")
    try:
        return pool.submit(asyncio.run, coro).result(timeout)
    finally:
        pool.shutdown(wait=False)
