"""The instructor's live room: learners' checks reported over a WebSocket, and the view.

    from workshop_lib.progress import ProgressLesson   # the room server's side
    from workshop_lib.progress import report           # what every check() calls

``model.py`` (the board: who did what) and ``server.py`` (``/progress``, ``/progress/watch``,
``/api/progress``) load nothing of the kernel's side; ``shared.py`` keeps the board in Redis for
a room on many processes; ``reporter.py`` is the learner's sender, ``banner.py`` the
instructor's announcement above the course's widgets.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["Board", "ProgressLesson", "Reporter", "report", "start", "take_announcement"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Board": ".model",
        "ProgressLesson": ".server",
        "Reporter": ".reporter",
        "report": ".reporter",
        "start": ".reporter",
        "take_announcement": ".reporter",
    },
)
