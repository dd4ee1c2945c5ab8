"""Python chat clients: a member of the room that keeps its state, and a bot built on it.

    with ChatClient(server.links.ws("/chat"), "ada") as ada:
        ada.send("hello")
        ada.users, ada.messages

    bot = ChatBot(server.links.ws("/chat"), "bot", reply)   # reply(text, sender, users)

The client reads on a thread of its own (a chat client must keep reading: the server
disconnects members that fall too far behind) and calls ``on_event`` from that thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from websockets.sync.client import ClientConnection

from ..reading_client import Event, ReadingClient

__all__ = ["ChatBot", "ChatClient", "Reply"]

logger = logging.getLogger("workshop_lib.chat_client")

Reply = Callable[[str, str, list[str]], "str | None"]


class ChatClient(ReadingClient):
    """A member of the chat room: joins as ``name``, keeps users and messages up to date.

    Usage: ``with ChatClient(url, "ada") as ada: ada.send("hi")``.
    ``you`` is the name the server gave (``"ada 2"`` if "ada" was taken).
    """

    def __init__(
        self,
        url: str,
        name: str,
        on_event: Callable[[Event], None] | None = None,
        timeout: float = 5.0,
        *,
        token: str | None = None,
        reconnect: bool = False,
    ) -> None:
        self.on_event = on_event
        self.you = name  # until the welcome says otherwise
        self.users: list[str] = []
        self.history: list[Event] = []  # what was said before we (last) came
        self.messages: list[Event] = []  # history, then every new message
        self.events: list[Event] = []  # everything received after the welcome, in order
        self.errors: list[Event] = []
        super().__init__(url, timeout, token=token, reconnect=reconnect)
        self.start_reading(f"chat-{self.you}")

    def on_open(self, websocket: ClientConnection) -> None:
        """Join (again, after a reconnect: under the name the room gave us)."""
        websocket.send(json.dumps({"type": "chat.join", "name": self.you}))
        welcome = json.loads(websocket.recv(timeout=self.timeout))
        if welcome.get("type") != "chat.welcome":
            raise ValueError(f"the server refused to let {self.you!r} join: {welcome}")
        self.you = welcome["you"]
        self.users = list(welcome["users"])
        self.history = list(welcome["history"])
        if not self.messages:
            self.messages = list(self.history)

    def handle(self, event: Event) -> None:
        """Update users, messages and errors, then call ``on_event`` (reader thread)."""
        self.events.append(event)
        kind = event.get("type")
        if kind == "chat.message":
            self.messages.append(event)
        elif kind == "chat.joined" and event["name"] not in self.users:
            self.users.append(event["name"])
        elif kind == "chat.left" and event["name"] in self.users:
            self.users.remove(event["name"])
        elif kind == "error":
            self.errors.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a bug in a callback must not stop the reading
                logger.exception("on_event failed for %s", kind)

    def send(self, text: str) -> None:
        """Post a message to the room."""
        self.send_event({"type": "chat.send", "text": text})


class ChatBot(ChatClient):
    """A member that answers messages: ``reply(text, sender, users)`` returns text or None.

    Usage: ``ChatBot(url, "bot", lambda text, sender, users: "pong" if text == "!ping" else None)``.
    It never answers its own messages (it would otherwise answer its answers).
    """

    def __init__(
        self,
        url: str,
        name: str,
        reply: Reply,
        timeout: float = 5.0,
        *,
        token: str | None = None,
        reconnect: bool = False,
    ) -> None:
        self.reply = reply
        super().__init__(url, name, self._answer, timeout, token=token, reconnect=reconnect)

    def _answer(self, event: Event) -> None:
        if event.get("type") != "chat.message" or event["from"] == self.you:
            return
        answer = self.reply(event["text"], event["from"], list(self.users))
        if answer:
            self.send(str(answer))
