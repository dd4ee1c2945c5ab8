"""Exercise checks in the style of Kaggle's learntools.

    from workshop_lib.checks.echo import q1, q2, ____
    q1.check(my_handler)   # a rich ✔ / ✘ result, never an exception
    q1.hint()
    q1.solution()

Each lesson's exercises live in a module of their own (``echo.py`` for notebook 01);
the shared pieces (results, the placeholder, the Exercise base) are in ``_base.py``.
"""

from __future__ import annotations

from ._base import CheckResult, Exercise, ____

__all__ = ["CheckResult", "Exercise", "____"]
