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
import time
from collections.abc import Callable

from websockets.sync.client import ClientConnection

from ..clients.reading import Event, ReadingClient

__all__ = ["ChatBot", "ChatClient", "Reply"]

logger = logging.getLogger("workshop_lib.chat_client")

Reply = Callable[[str, str, list[str]], "str | None"]


class ChatClient(ReadingClient):
    """A member of the chat room: joins as ``name``, keeps users and messages up to date.

    Usage: ``with ChatClient(url, "ada") as ada: ada.send("hi")``.
    ``you`` is the name the server gave (``"ada 2"`` if "ada" was taken).

    With ``reconnect=True`` it rejoins after a drop, and each welcome's history is merged
    into what it has by message id: ``messages`` holds every message once, those said while
    it was away included. A restarted server is a new room whose ids start at 1 again; the
    welcome's ``room`` tells it apart, and its messages follow the old room's.
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
        super().__init__(url, timeout, token=token, reconnect=reconnect)
        self.thread_name = f"chat-{name}"
        self.on_event = on_event
        self.you = name  # until the welcome says otherwise
        self.users: list[str] = []
        self.history: list[Event] = []  # the last welcome's: what was said before we came
        self.messages: list[Event] = []  # every message once: histories merged, then new ones
        self.events: list[Event] = []  # everything received after a welcome, as it came
        # What a chat window shows, in order: each message once, joined/left/error lines,
        # and a notice when the server turned out to be a new room.
        self.timeline: list[Event] = []
        self.errors: list[Event] = []
        self.room: str | None = None  # the room instance of the last welcome
        self._seen: set[int] = set()  # ids of the messages kept from that room
        self._last_id = 0  # the newest event id seen in that room (for a rejoin's since)
        self._resume: str | None = None  # the room's proof that our name is ours (Redis)
        # on_open (a welcome) and handle() both run on the reader thread, but the first
        # welcome comes on the thread that starts the client: the lock keeps each update
        # whole for anyone reading the lists meanwhile.
        self._state = threading.Lock()

    def on_open(self, websocket: ClientConnection) -> None:
        """Join (again, after a reconnect: under the name the room gave us)."""
        join: Event = {"type": "chat.join", "name": self.you}
        if self.room is not None and self._last_id:
            # A rejoin asks only for what it missed: the room sends the messages after the
            # last id we saw, if it is the same room (a restarted server is not).
            join.update(since=self._last_id, room=self.room)
        if self._resume is not None:
            join["resume"] = self._resume  # the name is ours, whichever process we land on
        websocket.send(json.dumps(join))
        welcome = json.loads(websocket.recv(timeout=self.timeout))
        if welcome.get("type") != "chat.welcome":
            raise ValueError(f"the server refused to let {self.you!r} join: {welcome}")
        self._welcome(welcome)

    def _welcome(self, welcome: Event) -> None:
        """Take a welcome's name, users and history: add only the messages not kept yet."""
        history = list(welcome["history"])
        room = welcome.get("room")
        with self._state:
            self.you = welcome["you"]
            self._resume = welcome.get("resume")
            self.users = list(welcome["users"])
            self.history = history
            if room != self.room:
                if self.room is not None:  # not our first welcome: the server restarted
                    self.timeline.append(
                        {
                            "type": "notice",
                            "message": "The server was restarted: this is a new room.",
                            "at": time.time(),
                        }
                    )
                # A new room numbers from 1 again: its ids say nothing about what we kept.
                self.room, self._seen, self._last_id = room, set(), 0
            missed = [m for m in history if m["id"] not in self._seen]
            for message in sorted(missed, key=lambda m: m["id"]):
                self._keep(message)

    def _keep(self, message: Event) -> None:
        self._seen.add(message["id"])
        self._last_id = max(self._last_id, message["id"])
        self.messages.append(message)
        self.timeline.append(message)

    def handle(self, event: Event) -> None:
        """Update users, messages and errors, then call ``on_event`` (reader thread)."""
        kind = event.get("type")
        if kind == "chat.welcome":  # mid-connection: the room began again (Redis lost it)
            self._welcome(event)
        with self._state:
            self.events.append(event)
            if kind == "chat.welcome":
                pass
            elif isinstance(event.get("id"), int):  # with Redis, joins and leaves have ids too
                self._last_id = max(self._last_id, event["id"])
            if kind == "chat.message":
                if event.get("id") not in self._seen:
                    self._keep(event)
            elif kind in ("chat.joined", "chat.left", "error"):
                # When it came, for the widget's time column (a message has the server's ts).
                self.timeline.append({**event, "at": time.time()})
                if kind == "chat.joined" and event["name"] not in self.users:
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
