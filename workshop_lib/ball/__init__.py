"""Lesson 02, the bouncing ball: one server-owned ball, pushed to every client in sync.

    from workshop_lib.ball import BallClient, BallControls, BallView, BallState, step

``model`` (the physics) and ``server`` (the ticker and ``/ball``) load no widgets.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = [
    "BallClient",
    "BallControls",
    "BallLesson",
    "BallState",
    "BallView",
    "measure_all",
    "measure_long_poll",
    "measure_poll",
    "measure_push",
    "measure_sse",
    "serve_http_push",
    "step",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "BallState": ".model",
        "step": ".model",
        "BallLesson": ".server",
        "BallClient": ".client",
        "BallControls": ".widgets",
        "BallView": ".widgets",
        "measure_all": ".compare",
        "measure_long_poll": ".compare",
        "measure_poll": ".compare",
        "measure_push": ".compare",
        "measure_sse": ".compare",
        "serve_http_push": ".http_push",
    },
)
