"""What every exercise shares: the ``____`` placeholder, results, hints and solutions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import inspect
import io
import textwrap
import threading
import time
import tokenize
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

from .. import progress
from ..server.start import WorkshopServer, start_server

__all__ = [
    "SOLUTIONS",
    "CheckResult",
    "Exercise",
    "Failed",
    "Text",
    "____",
    "run_coroutine",
    "scratch_server",
    "start_coroutine",
    "wait_until",
]

T = TypeVar("T")

# Inside the package, so a wheel has them too.
SOLUTIONS: Traversable = files(__package__) / "solutions"


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


class Failed(Exception):
    """Raised inside a check to end it with a "not yet" and this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Exercise:
    """One exercise: subclasses define ``_check``, ``hint_text`` and ``solution_file``.

    ``answer_name``: what the learner's function is called in the notebook; set it for an
    exercise whose answer is an ``async def`` coroutine function, and :meth:`run` it.
    """

    hint_text = ""
    solution_file = ""
    answer_name = ""

    def __init__(self, label: str) -> None:
        self.label = label  # the name the notebook imports it as: q1, q2, ...
        progress.start()  # joined to a room: connect now, so the learner shows as online

    @property
    def exercise(self) -> str:
        """The exercise's name across the course, e.g. ``"01.q1"`` (notebook, then label)."""
        notebook = self.solution_file[:2]
        return f"{notebook}.{self.label}" if notebook.isdigit() else self.label

    def _report(self, kind: str, outcome: str | None = None, error: str | None = None) -> None:
        """Tell the room's server, when the notebook is joined to one (never waits)."""
        lesson = type(self).__module__.rpartition(".")[2]
        progress.report(lesson, self.exercise, kind, outcome, error)

    def check(self, answer: Callable[..., Any]) -> CheckResult:
        """Check ``answer``; returns a result, never raises."""
        result, error = self._outcome(answer)
        self._report("check", "passed" if result.ok else "error" if error else "failed", error)
        # The instructor's announcement, once per kernel, under the next check.
        if (note := progress.take_announcement()) is not None:
            print(f"From your instructor: {note}")
        return result

    def _outcome(self, answer: Callable[..., Any]) -> tuple[CheckResult, str | None]:
        """The check's result, and the class of the exception the learner's code raised."""
        if _uses_placeholder(answer):
            return CheckResult(
                False, "replace every ____ with your code, run that cell, then run this check again"
            ), None
        if self.answer_name and not inspect.iscoroutinefunction(answer):
            return CheckResult(False, f"{self.answer_name} must be defined with `async def`"), None
        try:
            return self._check(answer), None
        except Failed as failed:
            return CheckResult(False, failed.message), None
        except Exception as exc:  # a learner's bug is feedback, not a crash of the notebook
            said = f"your code raised {type(exc).__name__}: {exc}"
            advice = self._advice(exc)
            return CheckResult(False, f"{said}; {advice}" if advice else said), type(exc).__name__

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        raise NotImplementedError

    def _advice(self, exc: Exception) -> str:
        """What usually causes ``exc`` in this exercise's answers ("" if nothing useful)."""
        return ""

    def run(self, answer: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float) -> T:
        """Run the learner's ``answer(*args)`` on a loop of its own; :class:`Failed` if it hangs.

        Usage in a check: ``fps = self.run(answer, url, 2.0, timeout=15)``.
        """
        try:
            return run_coroutine(answer(*args), timeout)
        except concurrent.futures.TimeoutError:
            raise Failed(
                f"{self.answer_name or 'your code'} did not finish within {timeout:g} s"
                + (f": {self.timeout_hint}" if self.timeout_hint else "")
            ) from None

    timeout_hint = ""
    """What usually makes this exercise's answer hang, added to the "did not finish" line."""

    def hint(self) -> Text:
        """A nudge in the right direction."""
        self._report("hint")
        return Text(f"Hint: {self.hint_text}")

    @property
    def code(self) -> str:
        """The solution's source: ``%load q1.code`` puts it into a cell."""
        return (SOLUTIONS / self.solution_file).read_text(encoding="utf-8")

    def solution(self) -> Text:
        """The solution, and how to load it into a cell."""
        self._report("solution")
        return Text(
            f"Solution: run `%load {self.label}.code` in a new cell, read it, then run it. "
            f"It reads:\n\n{self.code}"
        )


def _uses_placeholder(answer: object) -> bool:
    """True if the source of ``answer`` still has a ``____`` in its code (not in a comment)."""
    try:
        source = textwrap.dedent(inspect.getsource(answer))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return "____" in source  # cannot be read as code: the plain search is all there is
    # Only the name itself: a comment or a string that mentions ____ is not a blank.
    return any(tok.type == tokenize.NAME and tok.string == "____" for tok in tokens)


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.01) -> bool:
    """Whether ``condition()`` held within ``timeout`` seconds, looking every ``interval``.

    What a check waits for happens on other threads (a server's loop, a learner's client),
    so it is polled; the last look comes after the deadline, so a condition that became true
    while the check slept counts.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def scratch_server(port: int = 0, **options: Any) -> WorkshopServer:
    """A private server (on a free port), so checks never disturb the learner's own."""
    return start_server(port=port, name=f"check-{uuid.uuid4().hex[:8]}", **options)


def start_coroutine(
    coro: Coroutine[Any, Any, T],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> concurrent.futures.Future[T]:
    """Start ``coro`` on an event loop of its own, in a daemon thread; its future.

    A check never runs a coroutine on the thread that called it: in a notebook that thread
    is running the kernel's loop (the cell that called the check), where ``asyncio.run()``
    refuses to start and waiting would block. The thread is a daemon, so a learner's
    coroutine that never ends cannot keep Python from exiting. ``loop_factory`` makes the
    loop (a check may watch what the learner's code does on it).
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def main() -> None:
        if not future.set_running_or_notify_cancel():
            coro.close()
            return
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                result = runner.run(coro)
        except BaseException as exc:  # the learner's, handed to whoever waits for it
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=main, name="check-client", daemon=True).start()
    return future


def run_coroutine(
    coro: Coroutine[Any, Any, T],
    timeout: float,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``coro`` with :func:`start_coroutine` and return its result.

    Raises ``concurrent.futures.TimeoutError`` after ``timeout`` seconds, without waiting for
    the coroutine: one that never ends must not hang the check.
    """
    return start_coroutine(coro, loop_factory).result(timeout)
