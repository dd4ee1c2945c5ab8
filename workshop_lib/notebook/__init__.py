"""Tools that exist for the notebooks: what a learner sees around the lessons.

``setup_check.py`` notebook 00's check; ``logview.py`` the server's log as a widget;
``namebox.py`` and ``names.py`` the learner's display name; ``accidents.py`` one line, not a
traceback, for the accidents every learner has.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["LogView", "NameBox", "display_name", "run_checks"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "run_checks": ".setup_check",
        "LogView": ".logview",
        "NameBox": ".namebox",
        "display_name": ".names",
    },
)
