"""The room's shared server: notebooks join it through WORKSHOP_SERVER and WORKSHOP_TOKEN."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient
from workshop_lib.shared import SharedServer, SharedServerError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TOKEN = "room-token-for-tests"


@pytest.fixture
def room() -> Iterator[WorkshopServer]:
    """The instructor's server (a token, as any server for a room has)."""
    with start_server(port=0, name=f"room-{uuid.uuid4().hex[:8]}", token=TOKEN) as running:
        yield running


@pytest.fixture
def in_the_room(room, monkeypatch) -> WorkshopServer:
    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.setenv("WORKSHOP_TOKEN", TOKEN)
    return room


def test_shared_true_joins_the_server_named_in_the_environment(in_the_room):
    shared = start_server(shared=True, name="lesson")
    assert isinstance(shared, SharedServer)
    assert shared.url == in_the_room.url and shared.token == TOKEN
    assert shared.links.page("chat") == in_the_room.links.page("chat")
    with ChatClient(shared.links.ws("/chat"), "ada", token=shared.token) as ada:
        assert ada.users == ["ada"]
    shared.stop()  # lets go of the handle only
    assert in_the_room.running


def test_without_shared_the_environment_is_ignored(in_the_room):
    with start_server(port=0, name=f"own-{uuid.uuid4().hex[:8]}") as own:
        assert isinstance(own, WorkshopServer) and own.url != in_the_room.url


def test_a_shared_handle_cannot_run_code_on_the_server(in_the_room):
    shared = start_server(shared=True)
    assert not hasattr(shared, "app") and not hasattr(shared, "run")


def test_connect_sends_the_token(in_the_room):
    shared = SharedServer(in_the_room.http_url, TOKEN)

    async def echo() -> str:
        async with shared.connect("/echo") as websocket:
            await websocket.send("hi")
            return await websocket.recv()

    # On a thread of its own: Playwright's sync API leaves a loop running on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, echo()).result(10) == "hi"


def test_a_missing_token_says_what_to_set(room, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.delenv("WORKSHOP_TOKEN", raising=False)
    with pytest.raises(SharedServerError, match="set WORKSHOP_TOKEN"):
        start_server(shared=True)


def test_an_unreachable_server_says_what_to_check(monkeypatch):
    monkeypatch.setenv("WORKSHOP_SERVER", "http://127.0.0.1:9")  # discard: nobody listens
    with pytest.raises(SharedServerError, match="unset it to run your own"):
        start_server(shared=True)


def test_a_malformed_address_is_explained():
    with pytest.raises(SharedServerError, match=r"http://192\.168\.1\.20:8765"):
        SharedServer("ftp://somewhere")


@pytest.mark.parametrize(
    ("notebook", "expected"),
    [("03-chat-room.ipynb", {"linus", "bot"}), ("02-bouncing-ball.ipynb", set())],
)
def test_a_lesson_notebook_runs_against_the_rooms_server(in_the_room, notebook, expected):
    """The whole notebook, top to bottom, with the environment an instructor hands out:
    its shared parts join the room, its rude experiments stay on a private lab server."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    served = in_the_room.app.served
    assert served["/ball" if notebook.startswith("02") else "/chat"] >= 3
    posted = [m["from"] for m in in_the_room.lesson("chat").room.history]
    assert expected <= set(posted), posted
    # The flood and the sleepy client never reached the room.
    assert not {"chatterbox", "sleepy", "spammer"} & set(posted)
    assert json.dumps(in_the_room.app._stats())  # and the room's server is still serving


def test_the_setup_check_tests_the_rooms_server(in_the_room, monkeypatch):
    from workshop_lib.setup_check import check_shared_server

    assert [(c.name, c.status) for c in check_shared_server()] == [("shared-server", "ok")]
    monkeypatch.delenv("WORKSHOP_TOKEN")
    [missing] = check_shared_server()
    assert missing.status == "fail" and "WORKSHOP_TOKEN" in missing.detail
    monkeypatch.delenv("WORKSHOP_SERVER")
    assert check_shared_server() == []  # working alone: no row at all
