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
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

__all__ = ["ChatBot", "ChatClient", "Reply"]

logger = logging.getLogger("workshop_lib.chat_client")

Event = dict[str, Any]
Reply = Callable[[str, str, list[str]], "str | None"]


class ChatClient:
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
    ) -> None:
        self.url = url
        self.on_event = on_event
        self.events: list[Event] = []  # everything received, in order
        self.errors: list[Event] = []
        self._lock = threading.Lock()
        self._exit_stack = ExitStack()  # holds the connection's `with` until close()
        self._websocket: ClientConnection = self._exit_stack.enter_context(
            connect(url, open_timeout=timeout)
        )
        self._websocket.send(json.dumps({"type": "chat.join", "name": name}))
        welcome = json.loads(self._websocket.recv(timeout=timeout))
        if welcome.get("type") != "chat.welcome":
            self._exit_stack.close()
            raise ValueError(f"the server refused to let {name!r} join: {welcome}")
        self.you: str = welcome["you"]
        self.users: list[str] = list(welcome["users"])
        self.history: list[Event] = list(welcome["history"])  # what was said before we came
        self.messages: list[Event] = list(self.history)  # history, then every new message
        self._reader = threading.Thread(target=self._read, name=f"chat-{self.you}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self._websocket:
                event = json.loads(message)
                with self._lock:
                    self._apply(event)
                if self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:  # a bug in a callback must not stop the reading
                        logger.exception("on_event failed for %s", event.get("type"))
        except ConnectionClosed:
            pass  # close() or the server stopping: the thread ends

    def _apply(self, event: Event) -> None:
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

    def send(self, text: str) -> None:
        """Post a message to the room."""
        self._websocket.send(json.dumps({"type": "chat.send", "text": text}))

    @property
    def connected(self) -> bool:
        """True while the reader thread runs."""
        return self._reader.is_alive()

    @property
    def close_code(self) -> int | None:
        """How the connection ended (None while open)."""
        return self._websocket.close_code

    def close(self) -> None:
        """Leave the room and close the connection."""
        self._exit_stack.close()
        self._reader.join(5)

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ChatBot(ChatClient):
    """A member that answers messages: ``reply(text, sender, users)`` returns text or None.

    Usage: ``ChatBot(url, "bot", lambda text, sender, users: "pong" if text == "!ping" else None)``.
    It never answers its own messages (it would otherwise answer its answers).
    """

    def __init__(self, url: str, name: str, reply: Reply, timeout: float = 5.0) -> None:
        self.reply = reply
        super().__init__(url, name, on_event=self._answer, timeout=timeout)

    def _answer(self, event: Event) -> None:
        if event.get("type") != "chat.message" or event["from"] == self.you:
            return
        answer = self.reply(event["text"], event["from"], list(self.users))
        if answer:
            self.send(str(answer))
