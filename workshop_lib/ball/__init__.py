"""Lesson 02, the bouncing ball: one server-owned ball, pushed to every client in sync.

    from workshop_lib.ball import BallClient, BallControls, BallView, BallState, step

``model`` (the physics) and ``server`` (the ticker and ``/ball``) load no widgets.

What is where:

- ``bundle.py``: ``bundle()``: browser files that import each other written into one module,
  for an anywidget's front end (``view.js`` with the page's ``canvas.js`` and the shell's
  ``reconnect.js``).
- ``client.py``: ``BallClient``: reads the stream on its own thread and keeps the latest frame,
  with fps and delay.
- ``compare.py``: four ways to keep a client fresh (WebSocket, SSE, long polling, polling),
  measured alike from Python, one at a time or all at once: staleness samples and every byte
  both ways, counted on the client's socket.
- ``http_push.py``: ``serve_http_push(server)``: the ball as Server-Sent Events and long
  polling, on a tornado server on the workshop server's loop, fed each frame by
  ``BallLesson.frame_listeners``; counts the bytes its sockets move.
- ``model.py``: the ball's model: ``BallState``, the pure ``step(state, dt)``,
  ``apply_control``, ``apply_kick``. No clock, no network.
- ``redis_relay.py``: ``BallRelay``: the ball's ticker lease, saved state, frames and controls
  channels in Redis.
- ``server.py``: ``BallLesson``: the ball, its ``Ticker``, conflating fan-out, ``/ball``,
  ``/api/ball``; with Redis it hands the many-process part to ``SharedBall``.
- ``shared_ball.py``: ``SharedBall``: one process's part in the shared ball: hold the lease and
  tick, or relay the ticker's frames; publish without waiting; controls passed on to the ticker.
- ``ticker.py``: ``Ticker``: calls ``on_tick(steps)`` ``rate`` times a second on the loop,
  drift-free; after a stall one call counting the missed ticks. ``bench/ball_fanout.py``'s bare
  server ticks with it too.
- ``widgets.py``: ``BallView`` (an anywidget canvas, itself a browser WebSocket client; its
  module is ``view.js``) and ``BallControls``.

The page: ``ball.js`` wires ``ball-view.js`` (the elements), ``ball-controls.js``,
``poller.js`` (GET api/ball), ``feed.js`` (each side's numbers) and ``canvas.js`` (drawing).
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
