"""Lesson 03, the chat room: many clients, one order, presence and history.

    from workshop_lib.chat import ChatBot, ChatClient, ChatWidget

``model`` (the room's rules) and ``server`` (``/chat``) load no widgets.

What is where:

- ``client.py``: ``ChatClient`` (a member that keeps users and messages) and ``ChatBot``.
- ``events.py``: ``chat.welcome``, ``chat.message``, ``chat.joined``, ``chat.left`` and the
  chat's errors, each built in one place for both rooms.
- ``lookalike.py``: ``skeleton()``: Unicode's confusable skeletons (UTS #39, from ``confusable-
  homoglyphs``' data), so that names that look alike are numbered; ``invisible()``: characters
  that render as nothing, refused in names.
- ``measure.py``: ``measure_room()``, ``RoomTable``: one room on one process or several
  (members, CPU per process, delivery p50/p99, one order): notebook 06's table and
  ``bench/scale_out.py``.
- ``members.py``: ``Members``: name to connection for this process's members; writes events to
  them in one ``fanout()`` pass and closes (1008) those too slow.
- ``model.py``: the chat's rules: names, texts, ``Room`` (users, history, ids). No network.
- ``redis_room.py``: ``RedisRoom``: the chat shared by many processes through Redis (one stream,
  one id counter, presence with heartbeats); see docs/scaling.md.
- ``rooms.py``: ``RoomBackend``, the room's interface (join, post, leave, flush, instance, last
  id, health), and ``LocalRoom``: the room in memory, one write pass per turn of the loop.
- ``server.py``: ``ChatLesson``: the ``/chat`` handler (rate limit 4029, join first, join grace
  1008), the same for both rooms: it joins, posts and leaves through a ``RoomBackend`` chosen
  once.
- ``shared_room.py``: ``SharedRoom``: the same interface on ``RedisRoom``: one stream reader per
  process, presence heartbeats, welcomes that meet the live stream, a new room after Redis lost
  its data.
- ``widgets.py``: ``ChatWidget``: messages, users and an input in the notebook.

The page: ``chat.js`` (joining, the connection, leaving, sending) with ``chat-view.js`` (the
elements and their states), ``message-log.js`` and ``member-list.js``.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["ChatBot", "ChatClient", "ChatLesson", "ChatWidget", "Room"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Room": ".model",
        "ChatLesson": ".server",
        "ChatClient": ".client",
        "ChatBot": ".client",
        "ChatWidget": ".widgets",
    },
)
