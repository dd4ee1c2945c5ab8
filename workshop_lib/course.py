"""The course: the lessons a server runs by default, found as installed plug-ins.

    start_server()                                          # every installed lesson
    start_server(lessons=default_lessons(ball={"rate": 25}))   # a lesson's own settings
    start_server(lessons=[BallLesson(rate=25)])             # only the ball

A lesson is an entry point of the group ``workshop_lib.lessons``, named as the lesson is
and pointing at its :class:`~workshop_lib.lesson.Lesson` subclass. The course registers its
own in ``pyproject.toml``; a package written elsewhere registers its lesson the same way in
its own ``pyproject.toml``, and once it is installed beside the course, every server runs it::

    [project.entry-points."workshop_lib.lessons"]
    shout = "shout_lesson.server:ShoutLesson"

The lessons come in the order of their ``order`` (then their names). A plug-in that cannot
be loaded (an import error, something that is not a Lesson, a page module that is missing)
is left out with one line in the log: the course runs without it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from importlib.metadata import EntryPoint, distributions
from typing import Any

from .lesson import Lesson

__all__ = ["GROUP", "default_lessons", "installed_lessons", "lesson_names"]

GROUP = "workshop_lib.lessons"

logger = logging.getLogger("workshop_lib.course")


def installed_lessons(found: tuple[EntryPoint, ...] | None = None) -> dict[str, type[Lesson]]:
    """The lessons' classes by name, in the course's order: ``found`` or the installed ones.

    Imports each lesson's server module, not its widgets. A broken entry point is logged and
    skipped; if the course's own lessons are all missing, its install predates them
    (RuntimeError, with what to do).
    """
    if found is None:
        found = _entry_points()
        if not any(_distribution(point) == "workshop-lib" for point in found):
            raise RuntimeError(
                "The course finds no lessons: the installed workshop_lib's metadata lists no "
                f"{GROUP} entry points (it was installed before they existed). Install it "
                'again from the course\'s folder: pip install -e ".[test]" (or pip install -e .)'
            )
    classes: dict[str, type[Lesson]] = {}
    for point in found:
        try:
            cls = _load(point, classes)
        except Exception as exc:  # whatever a foreign package raises: it must not stop the course
            where = _distribution(point)
            logger.error(
                "lesson plug-in %r (%s = %s%s) left out: %s. The course runs without it; fix "
                "that package or uninstall it%s.",
                point.name,
                point.name,
                point.value,
                f", from {where}" if where else "",
                _said(exc),
                f" (pip uninstall {where})" if where else "",
            )
            continue
        classes[point.name] = cls
    return dict(sorted(classes.items(), key=lambda item: (item[1].order, item[0])))


def lesson_names() -> list[str]:
    """The default course's lessons, in order."""
    return list(installed_lessons())


def default_lessons(**settings: Mapping[str, Any]) -> list[Lesson]:
    """A fresh instance of every installed lesson, with ``settings`` by lesson name.

    Usage: ``default_lessons(ball={"rate": 25}, chat={"rate": 2})``. A lesson given settings
    that it refuses raises; a plug-in that fails to start without any is left out (logged).
    """
    classes = installed_lessons()
    unknown = sorted(set(settings) - set(classes))
    if unknown:
        raise ValueError(
            f"no lesson called {', '.join(map(repr, unknown))}; "
            f"the lessons are {', '.join(classes)}"
        )
    lessons = []
    for name, cls in classes.items():
        if name in settings:  # the caller's own settings: their mistakes are theirs to see
            lesson = cls(**settings[name])
            lesson.check_pages()
        else:
            try:
                lesson = cls()
                lesson.check_pages()
            except Exception as exc:
                logger.error(
                    "lesson plug-in %r left out: %s.%s: %s. The course runs without it; fix "
                    "that package or uninstall it.",
                    name,
                    cls.__module__,
                    cls.__qualname__,
                    _said(exc),
                )
                continue
        lessons.append(lesson)
    return lessons


def _entry_points() -> tuple[EntryPoint, ...]:
    """The group's entry points of every distribution on the path, each name of each once.

    Not ``entry_points(group=...)``, which reads one copy of a distribution's metadata: an
    editable install leaves a ``workshop_lib.egg-info`` in the clone, on the path whenever
    Python runs there, and an older one (from before the lessons were entry points) would
    hide the installed metadata's lessons.
    """
    seen: set[tuple[str | None, str]] = set()
    found = []
    for dist in distributions():
        for point in dist.entry_points.select(group=GROUP):
            if (key := (_distribution(point), point.name)) not in seen:
                seen.add(key)
                found.append(point)
    return tuple(found)


def _load(point: EntryPoint, loaded: Mapping[str, type[Lesson]]) -> type[Lesson]:
    """The Lesson subclass ``point`` names; ValueError says what is wrong with it."""
    if point.name in loaded:
        raise ValueError(f"another installed lesson is called {point.name!r} already")
    cls = point.load()
    if not (isinstance(cls, type) and issubclass(cls, Lesson)):
        raise ValueError(f"{point.value} is {cls!r}, not a subclass of workshop_lib.Lesson")
    if cls.name != point.name:
        raise ValueError(
            f"{cls.__qualname__}.name is {cls.name!r}: the entry point's name must be the "
            "lesson's name"
        )
    if not isinstance(cls.order, int | float):
        raise ValueError(f"{cls.__qualname__}.order is {cls.order!r}, not a number")
    return cls


def _distribution(point: EntryPoint) -> str | None:
    """The (normalized) name of the distribution that installed ``point``, if known."""
    dist = getattr(point, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    return re.sub(r"[-_.]+", "-", name).lower() if name else None


def _said(exc: BaseException) -> str:
    """``ModuleNotFoundError: No module named 'x'``, on one line."""
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
