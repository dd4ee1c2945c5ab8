"""The course: which lessons a server runs by default. The one place that names them.

    start_server()                                          # every lesson below
    start_server(lessons=default_lessons(ball={"rate": 25}))   # a lesson's own settings
    start_server(lessons=[BallLesson(rate=25)])             # only the ball

Adding a lesson is one line in ``_REGISTRY``: its folder holds the rest.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from .lesson import Lesson

__all__ = ["default_lessons", "lesson_names"]

# name -> "module:class", imported only when a server is built, so importing the package
# (or one lesson) loads no other lesson.
_REGISTRY: dict[str, str] = {
    "echo": "workshop_lib.echo.server:EchoLesson",
    "ball": "workshop_lib.ball.server:BallLesson",
    "chat": "workshop_lib.chat.server:ChatLesson",
    "realtime": "workshop_lib.realtime.server:RealtimeLesson",
}


def lesson_names() -> list[str]:
    """The default course's lessons, in order."""
    return list(_REGISTRY)


def default_lessons(**settings: Mapping[str, Any]) -> list[Lesson]:
    """A fresh instance of every lesson of the course, with ``settings`` by lesson name.

    Usage: ``default_lessons(ball={"rate": 25}, chat={"rate": 2})``.
    """
    unknown = sorted(set(settings) - set(_REGISTRY))
    if unknown:
        raise ValueError(
            f"no lesson called {', '.join(map(repr, unknown))}; "
            f"the lessons are {', '.join(_REGISTRY)}"
        )
    lessons = []
    for name, target in _REGISTRY.items():
        module, _, cls = target.partition(":")
        lesson = getattr(importlib.import_module(module), cls)(**settings.get(name, {}))
        lessons.append(lesson)
    return lessons
