"""A learner's handler that calls sys.exit(), or raises KeyboardInterrupt, CancelledError or
GeneratorExit, ends its own connection (1011, one log line naming it), never the server."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from workshop_lib import start_server


def _exit(_: object) -> None:
    sys.exit(3)


def _interrupt(_: object) -> None:
    raise KeyboardInterrupt


def _cancelled(_: object) -> None:
    raise asyncio.CancelledError


def _generator_exit(_: object) -> None:
    raise GeneratorExit


@pytest.mark.parametrize(
    ("raiser", "named"),
    [
        (_exit, "SystemExit(3)"),
        (_interrupt, "KeyboardInterrupt()"),
        (_cancelled, "CancelledError()"),
        (_generator_exit, "GeneratorExit()"),
    ],
)
def test_a_handler_that_exits_ends_only_its_connection(raiser, named, caplog):
    caplog.set_level(logging.INFO, logger="workshop_lib")

    async def handler(websocket):
        await websocket.recv()
        raiser(websocket)

    with start_server(port=0, name=f"exits-{uuid.uuid4().hex[:8]}") as server:
        server.route("/mine", handler)
        port = server.port
        for _ in range(2):  # the second proves the first left the server serving
            with connect(server.links.ws("/mine"), open_timeout=5) as ws:
                ws.send("go")
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
            assert named in closed.value.rcvd.reason
        assert server.running and server.port == port
        with connect(server.links.ws("/echo"), open_timeout=5) as ws:
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"
    lines = [r for r in caplog.records if named in r.getMessage()]
    assert len(lines) == 2, [r.getMessage() for r in caplog.records]
    assert all(r.levelno == logging.ERROR and "/mine" in r.getMessage() for r in lines)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
