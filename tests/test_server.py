"""The server handle: start, repr, replace on re-run, port fallback, stop without leftovers."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from workshop_lib import (
    PortFallbackWarning,
    PortInUseError,
    running_servers,
    start_server,
    stop_server,
)
from workshop_lib.server import start as server_module


def unique_name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def echo_once(url: str, text: str = "ping") -> str | bytes:
    with connect(url, open_timeout=5) as websocket:
        websocket.send(text)
        return websocket.recv(timeout=5)


def server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("workshop-server-")]


@pytest.fixture
def held_port():
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_start_serves_and_stop_leaves_no_thread():
    name = unique_name()
    server = start_server(port=0, name=name)
    assert server.running
    assert server.port > 0
    assert server.url == f"ws://127.0.0.1:{server.port}"
    assert server.http_url == f"http://127.0.0.1:{server.port}"
    assert echo_once(server.url) == "ping"
    assert f"workshop-server-{name}" in server_threads()
    assert server in running_servers()
    server.stop()
    assert not server.running
    assert f"workshop-server-{name}" not in server_threads()
    assert server not in running_servers()
    server.stop()  # idempotent


def test_repr_shows_state_and_working_links(server):
    html = server._repr_html_()
    for link in (server.links.url("/"), server.links.page("echo"), server.links.url("/healthz")):
        assert f'href="{link}"' in html
    assert "running" in html and server.url in repr(server)
    server.stop()
    assert "stopped" in server._repr_html_() and "stopped" in repr(server)


def test_rerunning_the_cell_replaces_the_server_on_the_same_port(held_port):
    name = unique_name()
    first = start_server(port=0, name=name)
    port = first.port
    with connect(first.url) as websocket:
        second = start_server(port=port, name=name)  # same name, same port: no EADDRINUSE
        try:
            with pytest.raises(ConnectionClosed) as closed:
                websocket.recv(timeout=5)
            assert closed.value.rcvd.code == 1001  # going away
            assert not first.running
            assert second.port == port and echo_once(second.url) == "ping"
        finally:
            second.stop()


def test_busy_default_port_falls_back_with_a_clear_warning(monkeypatch, held_port):
    monkeypatch.setattr(server_module, "DEFAULT_PORT", held_port)
    with pytest.warns(PortFallbackWarning, match=f"Port {held_port} is in use") as warned:
        server = start_server(name=unique_name())
    try:
        assert server.port != held_port
        assert "lsof" in str(warned[0].message) or "netstat" in str(warned[0].message)
        assert f"port {held_port} was taken" in server._repr_html_()
        assert echo_once(server.url) == "ping"
    finally:
        server.stop()


def test_busy_explicit_port_raises_and_says_who_holds_it(held_port):
    name = unique_name()
    with pytest.raises(PortInUseError, match=f"port {held_port} is already in use") as raised:
        start_server(port=held_port, name=name)
    assert "another program holds" in str(raised.value)
    assert f"workshop-server-{name}" not in server_threads()


def test_port_held_by_another_workshop_server_is_named():
    other = start_server(port=0, name=unique_name())
    try:
        with pytest.raises(PortInUseError, match="same kernel"):
            start_server(port=other.port, name=unique_name())
    finally:
        other.stop()


def test_startup_errors_are_raised_in_the_caller():
    name = unique_name()
    with pytest.raises(OSError):
        start_server(
            port=0, host="203.0.113.1", name=name, token="t"
        )  # not an address of this machine
    assert f"workshop-server-{name}" not in server_threads()


def test_context_manager_and_stop_server():
    with start_server(port=0, name=unique_name()) as server:
        assert server.running
    assert not server.running
    a = start_server(port=0, name=unique_name())
    b = start_server(port=0, name=unique_name())
    stop_server(a.name)
    assert not a.running and b.running
    stop_server()
    assert not b.running and running_servers() == []


def test_run_and_submit_use_the_server_loop(server):
    async def loop_thread_name() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert server.run(loop_thread_name()) == f"workshop-server-{server.name}"
    assert server.submit(loop_thread_name()).result(5) == f"workshop-server-{server.name}"
    server.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        server.run(loop_thread_name())


def test_routes_can_be_added_while_running(server):
    async def reverse(websocket):
        async for message in websocket:
            await websocket.send(message[::-1])

    server.route("/reverse", reverse)
    assert echo_once(server.links.ws("/reverse"), "abc") == "cba"
    with pytest.raises(ValueError, match="starting with '/'"):
        server.route("reverse", reverse)


def test_stop_at_exit_stops_everything():
    server = start_server(port=0, name=unique_name())
    server_module._stop_all_at_exit()
    assert not server.running
