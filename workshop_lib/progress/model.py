"""The board of the room: which learner did what on which exercise. Plain data, no I/O.

A learner's kernel sends one event per ``check()``, ``hint()`` and ``solution()``; the board
keeps, per learner and exercise, the status, the number of checks, the failures, whether a
hint or the solution was used, and when. Each event has an id: a repeat (a kernel that
resends after a reconnect) is dropped, so a check counts once whatever the network did::

    board = Board(["01.q1", "01.q2"])
    board.record(parse_report(event), now=time.time())   # False for an id already seen
    board.snapshot(now)    # the JSON of GET /api/progress
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..notebook.names import MAX_NAME
from ..wire.protocol import ProtocolError

__all__ = [
    "KINDS",
    "MAX_LEARNERS",
    "OUTCOMES",
    "STUCK_FAILURES",
    "STUCK_SECONDS",
    "Board",
    "Report",
    "clean_name",
    "course_exercises",
    "parse_report",
]

KINDS = ("check", "hint", "solution")
OUTCOMES = ("passed", "failed", "error")
STUCK_FAILURES = 3  # failed checks without a pass: stuck
STUCK_SECONDS = 600.0  # on one exercise this long without a pass: stuck
MAX_IDS = 200_000  # ids remembered for dropping repeats (a day of a big room)
MAX_LEARNERS = 1_000  # names on the board: a flood of made-up names must not fill memory

_EXERCISE = re.compile(r"\d{2}\.q\d{1,2}")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_LESSON = re.compile(r"[a-z_]{1,32}")
_ERROR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")


@dataclass(frozen=True)
class Report:
    """One learner's event: a check's outcome, or a hint or the solution asked for."""

    id: str
    name: str
    lesson: str
    exercise: str
    kind: str
    outcome: str | None = None
    error: str | None = None
    attempt: int | None = None


def clean_name(value: object) -> str:
    """A learner's name as the room shows it; :class:`ProtocolError` for anything else."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_NAME:
        raise ProtocolError("bad_value", f"name must be 1 to {MAX_NAME} characters")
    if not value.isprintable():
        raise ProtocolError("bad_value", "name must have no line breaks or control characters")
    return value.strip()


def _field(event: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ProtocolError("bad_value", f"{name} must be {what}")
    return value


def parse_report(event: dict[str, Any]) -> Report:
    """The :class:`Report` in a ``progress.report`` event; :class:`ProtocolError` saying what
    is wrong. Only these fields are read: nothing else a client sends is kept."""
    kind = event.get("kind")
    if kind not in KINDS:
        raise ProtocolError("bad_value", f"kind must be one of {', '.join(KINDS)}")
    outcome = error = attempt = None
    if kind == "check":
        outcome = event.get("outcome")
        if outcome not in OUTCOMES:
            raise ProtocolError("bad_value", f"outcome must be one of {', '.join(OUTCOMES)}")
        if outcome == "error":
            error = _field(event, "error", _ERROR, "the exception's class name")
        attempt = event.get("attempt")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= 10**6:
            raise ProtocolError("bad_value", "attempt must be a whole number from 1")
    return Report(
        id=_field(event, "id", _ID, "8 to 64 letters, digits, - or _"),
        name=clean_name(event.get("name")),
        lesson=_field(event, "lesson", _LESSON, "a lesson's module name, e.g. 'echo'"),
        exercise=_field(event, "exercise", _EXERCISE, "like '01.q1'"),
        kind=kind,
        outcome=outcome,
        error=error,
        attempt=attempt,
    )


@dataclass
class _Exercise:
    """One learner on one exercise."""

    started: float
    updated: float
    status: str = "started"  # "started" (a hint or the solution only), "failed", "passed"
    attempts: int = 0
    failures: int = 0
    hint: bool = False
    solution: bool = False
    error: str | None = None  # the class of the last exception the learner's code raised

    def stuck(self, now: float) -> bool:
        if self.status == "passed":
            return False
        return self.failures >= STUCK_FAILURES or now - self.started >= STUCK_SECONDS

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "failures": self.failures,
            "hint": self.hint,
            "solution": self.solution,
            "error": self.error,
            "started": self.started,
            "updated": self.updated,
            "stuck": self.stuck(now),
        }


class Board:
    """Everyone's progress, in memory. Not thread-safe: use it on the server's loop."""

    def __init__(self, exercises: Iterable[str] = ()) -> None:
        self.exercises: list[str] = sorted(set(exercises))
        self.learners: dict[str, dict[str, _Exercise]] = {}
        self.last_seen: dict[str, float] = {}
        self.online: Counter[str] = Counter()  # open connections per learner, here
        self.remote: Counter[str] = Counter()  # the same on the room's other processes
        self.events = 0  # events recorded (repeats not counted)
        self.repeats = 0
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first

    def seen(self, name: str, now: float) -> None:
        """``name`` is here (a connection said hello): listed, even before any check.

        Raises :class:`ProtocolError` (``room_full``) for a new name past ``MAX_LEARNERS``.
        """
        if name not in self.learners and len(self.learners) >= MAX_LEARNERS:
            raise ProtocolError(
                "room_full", f"the board holds {MAX_LEARNERS} learners; no new name is taken"
            )
        self.learners.setdefault(name, {})
        self.last_seen[name] = now

    def connected(self, name: str, now: float) -> None:
        self.seen(name, now)
        self.online[name] += 1

    def disconnected(self, name: str, now: float) -> None:
        self.online[name] -= 1
        if self.online[name] <= 0:
            del self.online[name]
        self.last_seen[name] = now

    def is_online(self, name: str) -> bool:
        return self.online[name] > 0 or self.remote[name] > 0

    def set_remote(self, remote: Counter[str], now: float) -> list[str]:
        """The other processes' connected learners; the names whose online state changed."""
        before = {name for name in self.learners if self.is_online(name)}
        for name in remote:
            with contextlib.suppress(ProtocolError):  # a full board lists no new names
                self.seen(name, now)
        self.remote = Counter({name: n for name, n in remote.items() if name in self.learners})
        after = {name for name in self.learners if self.is_online(name)}
        return sorted(before ^ after)

    def record(self, report: Report, now: float) -> bool:
        """Count ``report``; False (and nothing changes) if its id was seen before."""
        if report.id in self._ids:
            self.repeats += 1
            return False
        self.seen(report.name, now)  # first: a refused name leaves no trace
        self._ids[report.id] = None
        if len(self._ids) > MAX_IDS:
            del self._ids[next(iter(self._ids))]
        self.events += 1
        if report.exercise not in self.exercises:
            self.exercises = sorted({*self.exercises, report.exercise})
        mine = self.learners[report.name]
        entry = mine.get(report.exercise)
        if entry is None:
            entry = mine[report.exercise] = _Exercise(started=now, updated=now)
        entry.updated = now
        if report.kind == "hint":
            entry.hint = True
        elif report.kind == "solution":
            entry.solution = True
        else:
            entry.attempts += 1
            if report.outcome == "passed":
                entry.status = "passed"
            else:
                entry.failures += 1
                entry.error = report.error
                if entry.status != "passed":
                    entry.status = "failed"
        return True

    def learner(self, name: str, now: float) -> dict[str, Any]:
        """One learner's row: name, online, last seen, and each exercise started."""
        return {
            "name": name,
            "online": self.is_online(name),
            "last_seen": self.last_seen.get(name),
            "exercises": {
                exercise: entry.as_json(now)
                for exercise, entry in sorted(self.learners.get(name, {}).items())
            },
        }

    def stuck(self, now: float) -> list[dict[str, Any]]:
        """Who is stuck on what: three failures without a pass, or ten minutes on it."""
        return [
            {"name": name, "exercise": exercise, "failures": entry.failures, "since": entry.started}
            for name, mine in sorted(self.learners.items())
            for exercise, entry in sorted(mine.items())
            if entry.stuck(now)
        ]

    def passed(self) -> dict[str, int]:
        """How many learners passed each exercise."""
        counts = Counter(
            exercise
            for mine in self.learners.values()
            for exercise, entry in mine.items()
            if entry.status == "passed"
        )
        return {exercise: counts[exercise] for exercise in self.exercises}

    def snapshot(self, now: float) -> dict[str, Any]:
        """The whole board: what ``GET /api/progress`` answers."""
        return {
            "ts": now,
            "exercises": list(self.exercises),
            "learners": [self.learner(name, now) for name in sorted(self.learners)],
            "passed": self.passed(),
            "stuck": self.stuck(now),
            "stuck_rule": {"failures": STUCK_FAILURES, "seconds": STUCK_SECONDS},
        }

    def counts(self) -> dict[str, int]:
        """For the public room page: numbers only, no names."""
        online = sum(1 for name in self.learners if self.is_online(name))
        return {"learners": len(self.learners), "online": online, "events": self.events}


def course_exercises(sources: Sequence[str]) -> list[str]:
    """The exercises ``"01.q1"``... defined in the checks modules' ``sources``, found without
    importing them (importing every lesson's checks takes seconds): each module's
    ``qN = Class("qN")`` and that class's ``solution_file = "01_..."``."""
    import ast

    found: set[str] = set()
    for source in sources:
        tree = ast.parse(source)
        prefixes: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and any(
                            isinstance(t, ast.Name) and t.id == "solution_file"
                            for t in item.targets
                        )
                        and isinstance(item.value, ast.Constant)
                        and isinstance(item.value.value, str)
                        and item.value.value[:2].isdigit()
                    ):
                        prefixes[node.name] = item.value.value[:2]
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in prefixes
                and node.value.args
                and isinstance(node.value.args[0], ast.Constant)
            ):
                found.add(f"{prefixes[node.value.func.id]}.{node.value.args[0].value}")
    return sorted(found)
