"""A learner's accidents, outside a kernel: the course's clients say which server is gone.

tests/test_accidents_in_kernel.py shows the same lines where a learner meets them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import pytest
from websockets.asyncio.client import connect

from workshop_lib import start_server
from workshop_lib.chat import ChatClient
from workshop_lib.echo.widgets import LogEntry
from workshop_lib.notebook.accidents import ServerNotRunning, one_line


def test_a_stopped_servers_connect_names_it_and_the_cell_to_run():
    server = start_server(port=0, name=f"gone-{uuid.uuid4().hex[:8]}")
    server.stop()
    with pytest.raises(ServerNotRunning) as stopped:
        server.connect("/chat")
    assert f"the server {server.name!r} is stopped" in str(stopped.value)
    assert "run the cell that starts it" in str(stopped.value)
    assert isinstance(stopped.value, ConnectionRefusedError)  # code that catches that still does


def test_a_lesson_client_with_no_server_says_so_without_a_chain():
    server = start_server(port=0, name=f"gone-{uuid.uuid4().hex[:8]}")
    url = server.links.ws("/chat")
    server.stop()
    with pytest.raises(ServerNotRunning) as refused:
        ChatClient(url, "linus")
    said = f"nothing listens at 127.0.0.1:{server.port}: the server {server.name!r} was stopped"
    assert str(refused.value).startswith(said), refused.value
    assert refused.value.__suppress_context__  # no "During handling of the above..."


def test_a_refused_connect_names_the_server_stopped_on_that_port():
    server = start_server(port=0, name=f"gone-{uuid.uuid4().hex[:8]}")
    url = server.links.ws("/echo")
    server.stop()

    async def refused() -> BaseException:
        try:
            async with connect(url, proxy=None):
                pass
        except ConnectionRefusedError as exc:
            return exc
        raise AssertionError("something answered on a stopped server's port")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        exc = pool.submit(asyncio.run, refused()).result(10)
    line = one_line(exc)
    assert line is not None and f"the server {server.name!r} was stopped" in line
    assert f":{server.port}" in line


def test_a_port_nobody_stopped_gets_the_general_advice():
    line = one_line(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)"))
    assert line == (
        "nothing listens at 127.0.0.1:9: its server is stopped, or not started yet; "
        "run the cell that starts the server, then this one again."
    )


def test_other_errors_keep_their_traceback():
    assert one_line(ZeroDivisionError("division by zero")) is None


def test_the_echo_panels_line_prints_what_went_wrong_instead_of_failing():
    came_back = LogEntry(None, "received", "hi", 0.5)  # type: ignore[arg-type]
    assert str(came_back) == "'hi' came back in 0.50 ms"
    refused = LogEntry(None, "error", "no server at ws://x/echo: run the cell that starts it")  # type: ignore[arg-type]
    assert str(refused) == "error: no server at ws://x/echo: run the cell that starts it"


def test_an_ipython_without_the_methods_it_writes_through_keeps_its_tracebacks(monkeypatch):
    import types

    from workshop_lib.notebook import accidents

    installed = []
    shell = types.SimpleNamespace(
        custom_exceptions=(), set_custom_exc=lambda *a: installed.append(a)
    )
    fake = types.SimpleNamespace(get_ipython=lambda: shell)
    monkeypatch.setitem(__import__("sys").modules, "IPython", fake)
    assert accidents.install() is False and installed == []
    shell._get_exc_info = shell._showtraceback = lambda *a: None
    assert accidents.install() is True and len(installed) == 1
