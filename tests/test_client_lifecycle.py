"""The Python clients' lifecycle: built before they start, closed without a leftover
connection, and a chat member that rejoins keeps every message once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection

from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient
from workshop_lib.chat.server import ChatLesson
from workshop_lib.chat.widgets import ChatWidget
from workshop_lib.clients.reading import Event, ReadingClient

from .helpers import wait_for


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def servers() -> Iterator[list[WorkshopServer]]:
    """Servers a test starts on one port, in turn: every one is stopped after the test."""
    started = [start_server(port=0, name=unique("lifecycle"))]
    yield started
    for server in started:
        server.stop()


def texts(client: ChatClient) -> list[str]:
    return [m["text"] for m in client.messages]


def shown(widget: ChatWidget, text: str) -> int:
    """How many message lines of the widget end with ``text``."""
    return widget.log_html.value.count(f"{text}</li>")


def drop(server: WorkshopServer, *names: str, code: int = 1011) -> None:
    """Close these members' connections from the server's side."""

    async def close_them() -> None:
        members = server.lesson("chat").members
        for name in names:
            await members[name].close(code, "dropped by the test")

    server.run(close_them())


def open_connections(server: WorkshopServer) -> int | None:
    return server.client_count()


# -- (a) a drop, then a rejoin: nothing missed, nothing doubled ----------------------------


def test_a_rejoin_keeps_every_message_once_those_said_while_away_included(servers):
    server = servers[-1]
    url = server.links.ws("/chat")
    with (
        ChatClient(url, "ada", reconnect=True) as ada,
        ChatClient(url, "grace") as grace,
    ):
        widget = ChatWidget(url, "lin")
        try:
            wait_for(lambda: {"ada", "lin"} <= set(grace.users))
            grace.send("before-1")
            grace.send("before-2")
            wait_for(lambda: texts(ada) == ["before-1", "before-2"])
            wait_for(lambda: shown(widget, "before-2") == 1)

            drop(server, "ada", "lin")  # 1011: worth another try, so both come back
            wait_for(lambda: "ada" not in grace.users and "lin" not in grace.users)
            # The first retry waits 0.4 s or more: this is said while both are away.
            assert ada.reconnects == 0 and widget.client.reconnects == 0
            grace.send("while-away")
            wait_for(lambda: texts(grace)[-1:] == ["while-away"])

            wait_for(lambda: ada.reconnects == 1 and widget.client.reconnects == 1, timeout=10)
            assert "while-away" in [m["text"] for m in ada.history]  # came in the welcome
            grace.send("after")
            expected = ["before-1", "before-2", "while-away", "after"]
            wait_for(lambda: texts(ada) == expected)
            wait_for(lambda: shown(widget, "after") == 1)

            ids = [m["id"] for m in ada.messages]
            assert ids == sorted(set(ids))  # each once, in id order
            assert texts(widget.client) == expected
            for text in expected:
                assert shown(widget, text) == 1, text
            html = widget.log_html.value  # newest first
            assert [html.index(f"{t}</li>") for t in reversed(expected)] == sorted(
                html.index(f"{t}</li>") for t in expected
            )
        finally:
            widget.close()


# -- (b) a restarted server is a new room -------------------------------------------------


def test_a_restarted_server_is_a_new_room_whose_messages_are_kept(servers):
    url = servers[-1].links.ws("/chat")
    with ChatClient(url, "ada", reconnect=True) as ada:
        with ChatClient(url, "grace") as grace:
            grace.send("old-1")
            grace.send("old-2")
            wait_for(lambda: texts(ada) == ["old-1", "old-2"])
        old_room = ada.room
        port = servers[-1].port
        servers[-1].stop()
        wait_for(lambda: not ada.connected)
        # The new room already has a message 1 when ada comes back: id 1, like "old-1".
        lesson = ChatLesson()
        lesson.room.post("grace", "new-1", time.time())
        servers.append(start_server(port=port, name=unique("restarted"), lessons=[lesson]))
        wait_for(lambda: ada.reconnects == 1, timeout=15)
        assert ada.room != old_room and ada.room == lesson.room.instance
        with ChatClient(url, "grace") as grace:
            grace.send("new-2")  # id 2, like "old-2"
            wait_for(lambda: texts(ada)[-1:] == ["new-2"])
        assert texts(ada) == ["old-1", "old-2", "new-1", "new-2"]
        assert [m["id"] for m in ada.messages] == [1, 2, 1, 2]


def test_the_welcome_names_the_room_instance():
    first, second = ChatLesson(), ChatLesson()
    welcome = first.room.welcome("ada")
    assert welcome["room"] == first.room.instance
    assert isinstance(welcome["room"], str) and len(welcome["room"]) >= 8
    assert first.room.instance != second.room.instance
    assert first.room.welcome("grace")["room"] == welcome["room"]


# -- (c) close() while the reader reconnects ---------------------------------------------


class HeldGreeter(ChatClient):
    """Holds its greeting on a reconnect until the test lets it go."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name, reconnect=True)
        self.greeting = threading.Event()  # the reader is in on_open, on a new connection
        self.release = threading.Event()

    def on_open(self, websocket: ClientConnection) -> None:
        if self.events or self.messages or self.users:  # not the first connection
            self.greeting.set()
            self.release.wait(10)
        super().on_open(websocket)


def reader_of(client: ReadingClient) -> threading.Thread:
    thread = client._reader
    assert thread is not None
    return thread


def test_close_during_the_greeting_of_a_reconnect_leaves_no_connection(servers):
    url = servers[-1].links.ws("/chat")
    client = HeldGreeter(url, "ada")
    try:
        port = servers[-1].port
        servers[-1].stop()
        wait_for(lambda: not client.connected)
        server = start_server(port=port, name=unique("restarted"))
        servers.append(server)
        # The reader has opened a new connection and is greeting on it...
        wait_for(client.greeting.is_set, timeout=15)
        assert open_connections(server) == 1
        # ...when close() runs on another thread.
        closer = threading.Thread(target=client.close, name="closer")
        closer.start()
        wait_for(client._closing.is_set)
        client.release.set()
        closer.join(15)
        assert not closer.is_alive(), "close() never returned"
        assert not reader_of(client).is_alive()
        wait_for(lambda: open_connections(server) == 0)
        assert not client.connected and client.reconnects == 0
    finally:
        client.release.set()
        client.close()


@pytest.mark.parametrize("when", ["in_backoff", "as_it_connects"])
def test_close_while_reconnecting_leaves_no_connection_and_ends_the_reader(servers, when):
    url = servers[-1].links.ws("/chat")
    client = ChatClient(url, "ada", reconnect=True)
    try:
        port = servers[-1].port
        servers[-1].stop()
        wait_for(lambda: not client.connected)
        server = start_server(port=port, name=unique("restarted"))
        servers.append(server)
        if when == "as_it_connects":  # the reader has a new socket, maybe not yet greeted
            wait_for(lambda: (open_connections(server) or 0) >= 1, timeout=15)
        client.close()
        assert not reader_of(client).is_alive()
        wait_for(lambda: open_connections(server) == 0)
        wait_for(lambda: "ada" not in server.lesson("chat").members)
        client.close()  # again: nothing to do, no error
    finally:
        client.close()


# -- (d) start() runs on a fully built object, once --------------------------------------


class Greeter(ChatClient):
    """Sets an attribute after super().__init__ and uses it in on_open."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        self.greeting = f"hello from {name}"

    def on_open(self, websocket: ClientConnection) -> None:
        super().on_open(websocket)
        websocket.send(json.dumps({"type": "chat.send", "text": self.greeting}))


class Collector(ReadingClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.collected: list[Event] = []
        self.opened_with = None

    def on_open(self, websocket: ClientConnection) -> None:
        self.opened_with = list(self.collected)  # fails if __init__ has not finished

    def handle(self, event: Event) -> None:
        self.collected.append(event)


def test_on_open_runs_after_every_init_has_finished(server):
    url = server.links.ws("/chat")
    with ChatClient(url, "grace") as grace, Greeter(url, "ada") as ada:
        assert ada.connected
        wait_for(lambda: texts(grace) == ["hello from ada"])
    with Collector(server.links.ws("/echo")) as collector:
        assert collector.opened_with == [] and collector.connected


def test_start_runs_once_and_can_be_deferred(server):
    url = server.links.ws("/chat")
    ada = ChatClient(url, "ada", start=False)
    try:
        assert not ada.connected and ada.close_code is None
        assert "ada" not in server.lesson("chat").members
        with pytest.raises(RuntimeError, match="not started"):
            ada.send("too early")
        assert ada.start() is ada and ada.connected
        with pytest.raises(RuntimeError, match=r"start\(\) was already called"):
            ada.start()
    finally:
        ada.close()
    with ChatClient(url, "grace") as grace, pytest.raises(RuntimeError, match="already"):
        grace.start()
    closed = ChatClient(url, "early", start=False)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.start()


class BallReader(ReadingClient):
    """Counts ball frames, whichever server they come from."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(urls, reconnect=True)
        self.frames = 0

    def handle(self, event: Event) -> None:
        self.frames += 1


def test_a_client_with_several_addresses_moves_to_the_next_when_its_server_dies():
    first = start_server(port=0, name=unique("first"))
    second = start_server(port=0, name=unique("second"))
    try:
        urls = [first.links.ws("/ball"), second.links.ws("/ball")]
        with BallReader(urls) as client:
            wait_for(lambda: client.frames > 3)
            assert client.url == urls[0]
            first.stop()  # the process the client was on goes away
            wait_for(lambda: client.reconnects == 1 and client.connected, 10)
            assert client.url == urls[1]
            seen = client.frames
            wait_for(lambda: client.frames > seen + 3)  # and reads from the other one
    finally:
        first.stop()
        second.stop()
