"""Lesson 03, the chat room: many clients, one order, presence and history.

    from workshop_lib.chat import ChatBot, ChatClient, ChatWidget

``model`` (the room's rules) and ``server`` (``/chat``) load no widgets.
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
