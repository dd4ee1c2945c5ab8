"""The room's shared server: notebooks join it through WORKSHOP_SERVER and WORKSHOP_TOKEN."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import pytest

from tests.conftest import ROOM_TOKEN
from tests.helpers import wait_until
from workshop_lib import WorkshopServer, start_server
from workshop_lib.chat.client import ChatClient
from workshop_lib.server.room import SharedServer, SharedServerError, join_room_server


def test_join_room_server_joins_the_server_named_in_the_environment(in_the_room):
    shared = join_room_server("lesson")
    assert isinstance(shared, SharedServer) and shared.name == "lesson"
    assert shared.url == in_the_room.url and shared.token == ROOM_TOKEN
    assert shared.links.page("chat") == in_the_room.links.page("chat")
    with ChatClient(shared.links.ws("/chat"), "ada", token=shared.token) as ada:
        assert ada.users == ["ada"]
    shared.stop()  # lets go of the handle only
    assert in_the_room.running


def test_start_server_always_starts_one_of_its_own(in_the_room):
    with start_server(port=0, name=f"own-{uuid.uuid4().hex[:8]}") as own:
        assert isinstance(own, WorkshopServer) and own.url != in_the_room.url


def test_alone_there_is_no_room_to_join_and_the_notebooks_start_their_own(monkeypatch):
    monkeypatch.delenv("WORKSHOP_SERVER", raising=False)
    assert join_room_server() is None
    with join_room_server() or start_server(port=0, name=f"alone-{uuid.uuid4().hex[:8]}") as own:
        assert isinstance(own, WorkshopServer) and own.running


def test_the_old_shared_keyword_says_what_to_write_instead():
    with pytest.raises(TypeError, match=r"join_room_server\(\) or start_server\(\)"):
        start_server(shared=True)  # type: ignore[call-arg]


def test_a_shared_handle_cannot_run_code_on_the_server(in_the_room):
    shared = join_room_server()
    assert not hasattr(shared, "app") and not hasattr(shared, "run")


def test_connect_sends_the_token(in_the_room):
    shared = SharedServer(in_the_room.http_url, ROOM_TOKEN)

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
        join_room_server()


def test_a_wrong_token_is_refused_when_joining_not_at_the_first_client(room, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SERVER", room.http_url)
    monkeypatch.setenv("WORKSHOP_TOKEN", "last-weeks-token")
    with pytest.raises(SharedServerError) as refused:
        join_room_server()
    assert "refused this token: ask your instructor for the current one" in str(refused.value)
    assert "last-weeks-token" not in str(refused.value)  # a token is never shown


def test_the_right_token_leaves_no_connection_open(in_the_room):
    join_room_server()
    assert wait_until(lambda: in_the_room.client_count() == 0)  # the check's WebSocket closed


def test_an_unreachable_server_says_what_to_check(monkeypatch):
    monkeypatch.setenv("WORKSHOP_SERVER", "http://127.0.0.1:9")  # discard: nobody listens
    with pytest.raises(SharedServerError, match="unset it to run your own"):
        join_room_server()


def test_a_malformed_address_is_explained():
    with pytest.raises(SharedServerError, match=r"http://192\.168\.1\.20:8765"):
        SharedServer("ftp://somewhere")


def test_the_setup_check_tests_the_rooms_server(in_the_room, monkeypatch):
    from workshop_lib.notebook.setup_check import check_shared_server

    assert [(c.name, c.status) for c in check_shared_server()] == [("shared-server", "ok")]
    monkeypatch.setenv("WORKSHOP_TOKEN", "last-weeks-token")
    [refused] = check_shared_server()
    assert refused.status == "fail" and "refused this token" in refused.detail
    monkeypatch.delenv("WORKSHOP_TOKEN")
    [missing] = check_shared_server()
    assert missing.status == "fail" and "WORKSHOP_TOKEN" in missing.detail
    monkeypatch.delenv("WORKSHOP_SERVER")
    assert check_shared_server() == []  # working alone: no row at all
