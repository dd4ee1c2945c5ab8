"""Exercise checks in the style of Kaggle's learntools.

    from workshop_lib.checks.echo import q1, q2, ____
    q1.check(my_handler)   # a rich ✔ / ✘ result, never an exception
    q1.hint()
    q1.solution()

Each lesson's exercises live in a module of their own: ``echo.py`` (notebook 01),
``ball.py`` (02), ``chat.py`` (03), ``auth.py`` (04), ``realtime.py`` (05), ``scaling.py``
(06), ``function_calling.py`` (07), ``voice.py`` (08); the shared pieces (results, the
placeholder, the Exercise base) are in ``_base.py``, the solutions in ``solutions/``.
"""

from __future__ import annotations

from ._base import CheckResult, Exercise, ____

__all__ = ["CheckResult", "Exercise", "____"]
