"""fanout(): one frame for every connection, with broadcast()'s checks, on real sockets.

Most tests run twice (``fan``): with the direct implementation, and with the fallback that
:mod:`workshop_lib.wire.fanout` selects when websockets lacks an internal it reads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from workshop_lib.clients.raw import RawClient
from workshop_lib.wire import fanout as fanout_module
from workshop_lib.wire.fanout import (
    IMPLEMENTATION,
    _frame_size,
    _select,
    fanout,
    missing_internals,
    serialize,
)

HOST = "127.0.0.1"


def run(main) -> None:
    """``asyncio.run(main())`` on a thread of its own: Playwright's sync API (the browser
    tests' session fixture) keeps an event loop running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result(timeout=60)


@contextlib.asynccontextmanager
async def server(compression: str | None = None) -> AsyncIterator[tuple[int, list]]:
    """A bare websockets server on port 0; yields its port and its live connections."""
    connections: list[ServerConnection] = []

    async def handler(websocket: ServerConnection) -> None:
        connections.append(websocket)
        await websocket.wait_closed()

    async with serve(handler, HOST, 0, compression=compression) as running:
        yield running.sockets[0].getsockname()[1], connections


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


SIMULATED = ["Connection.send_in_progress (set in __init__)"]  # as missing_internals() says


@pytest.fixture(params=["direct", "broadcast"])
def fan(request):
    """``fanout`` as imported, or the fallback ``_select()`` picks when an internal is missing."""
    if request.param == "direct":
        return fanout
    implementation, fallback = _select(SIMULATED)
    assert implementation == "broadcast"
    return fallback


def test_the_installed_websockets_has_every_internal_fanout_reads():
    assert missing_internals() == []
    assert IMPLEMENTATION == "direct"
    assert fanout_module._fanout is fanout_module._direct_fanout


def test_a_missing_internal_selects_the_fallback_with_one_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="workshop_lib.wire.fanout"):
        implementation, chosen = _select(SIMULATED)
        # Nothing missing: no warning either.
        assert _select([]) == ("direct", fanout_module._direct_fanout)
    assert implementation == "broadcast"
    assert chosen is fanout_module._broadcast_fanout
    [record] = caplog.records
    assert (record.name, record.levelno) == ("workshop_lib.wire.fanout", logging.WARNING)
    assert "falls back to websockets.broadcast() (slower, still correct)" in record.getMessage()
    assert "Connection.send_in_progress" in record.getMessage()


@pytest.mark.parametrize("length", [0, 1, 125, 126, 300, 65535, 65536, 70000])
def test_the_fallback_counts_the_bytes_of_the_serialized_frame(length):
    assert _frame_size(length, masked=False) == len(serialize(b"x" * length)[1])
    masked = Frame(Opcode.BINARY, b"x" * length).serialize(mask=True)
    assert _frame_size(length, masked=True) == len(masked)


def test_every_client_decodes_text_and_binary_and_the_byte_count_matches(fan):
    async def main() -> None:
        async with server() as (port, connections):
            clients = [await connect(f"ws://{HOST}:{port}", compression=None) for _ in range(5)]
            await until(lambda: len(connections) == 5)
            text = fan(connections, "héllo, ball ⚽")
            binary = fan(connections, b"\x00\x01\xff")
            for client in clients:
                assert await client.recv() == "héllo, ball ⚽"
                assert await client.recv() == b"\x00\x01\xff"
            # Exactly websockets' own unmasked frame, once per connection.
            frame = Frame(Opcode.TEXT, "héllo, ball ⚽".encode()).serialize(mask=False)
            assert (text.sent, text.written, text.behind) == (5, 5 * len(frame), [])
            assert binary.written == 5 * (2 + 3)
            for client in clients:
                await client.close()

    run(main)


def test_the_bytes_on_the_wire_are_the_frame(fan):
    async def main() -> None:
        async with server() as (port, connections):
            raw = await asyncio.to_thread(RawClient, HOST, port, "/")  # offers no extension
            await until(lambda: len(connections) == 1)
            result = fan(connections, "x" * 300)  # a 2-byte extended length
            _, frame, _ = serialize("x" * 300)
            assert frame[:4] == b"\x81\x7e\x01\x2c" and result.written == len(frame)
            received = b""
            while len(received) < len(frame):
                received += await asyncio.to_thread(raw.sock.recv, 4096)
            assert received == frame
            raw.vanish()

    run(main)


def test_several_messages_go_out_in_order_in_one_write_per_connection(fan):
    # What the room on Redis does with one stream read: each message its own frame, all of
    # them in one transport.write() (one send() system call) per connection.
    async def main() -> None:
        async with server(compression="deflate") as (port, connections):
            plain = [await connect(f"ws://{HOST}:{port}", compression=None) for _ in range(3)]
            deflate = await connect(f"ws://{HOST}:{port}")  # websockets frames these itself
            await until(lambda: len(connections) == 4)
            writes = {id(c): 0 for c in connections}
            for connection in connections:  # count the real transport's writes, then write
                real, key = connection.transport.write, id(connection)

                def counted(data, real=real, key=key) -> None:
                    writes[key] += 1
                    real(data)

                connection.transport.write = counted
            messages = [f"message {i} ⚽" for i in range(10)] + [b"\x00binary"]
            result = fan(connections, *messages)
            for client in [*plain, deflate]:
                assert [await client.recv() for _ in messages] == messages
            frames = b"".join(serialize(m)[1] for m in messages)
            assert result.sent == 4 and result.behind == []
            if fan is fanout:
                # websockets' own send_data() writes the deflated frames one by one.
                assert [writes[id(c)] for c in connections] == [1, 1, 1, len(messages)]
                assert result.written < 4 * len(frames)  # the deflated connection's are shorter
            else:  # the fallback: broadcast() once per message
                assert all(writes[id(c)] == len(messages) for c in connections)
                assert result.written == 4 * len(frames)
            assert fan(connections).sent == 0  # no message: nothing written
            for client in [*plain, deflate]:
                await client.close()

    run(main)


def test_closed_and_closing_connections_are_skipped(fan, caplog):
    async def main() -> None:
        async with server() as (port, connections):
            clients = [await connect(f"ws://{HOST}:{port}", compression=None) for _ in range(4)]
            await until(lambda: len(connections) == 4)
            gone, closing_handshake, lost_tcp, _ = connections
            await clients[0].close()  # closed: state CLOSED on the server
            await until(lambda: gone.protocol.state.name == "CLOSED")
            closer = asyncio.create_task(closing_handshake.close())
            await asyncio.sleep(0)  # its close frame is out: state CLOSING
            assert closing_handshake.protocol.state.name == "CLOSING"
            lost_tcp.transport.close()  # the TCP side is going; websockets does not know yet
            assert lost_tcp.protocol.state.name == "OPEN"
            result = fan(connections, "only for the open one")
            assert (result.sent, result.behind) == (1, [])
            assert await clients[3].recv() == "only for the open one"
            await closer
            await clients[3].close()

    with caplog.at_level(logging.WARNING):
        run(main)
    assert "socket.send() raised exception." not in caplog.text


def test_permessage_deflate_connections_get_websockets_own_framing(fan):
    async def main() -> None:
        async with server(compression="deflate") as (port, connections):
            deflate = await connect(f"ws://{HOST}:{port}")  # offers permessage-deflate
            plain = await connect(f"ws://{HOST}:{port}", compression=None)
            await until(lambda: len(connections) == 2)
            assert "permessage-deflate" in deflate.response.headers["Sec-WebSocket-Extensions"]
            # Several messages, with the connection's own send() in between: the deflate
            # context is shared with websockets, so the fallback must use websockets' framing.
            messages = [
                f'{{"type":"chat.message","id":{i},"text":"{"ab" * 40}"}}' for i in range(5)
            ]
            for i, message in enumerate(messages):
                result = fan(connections, message)
                assert result.sent == 2
                # The compressed frame is shorter than the plain one: it was deflated.
                # (The fallback counts every frame as uncompressed: it cannot see them.)
                if fan is fanout:
                    assert result.written < 2 * len(serialize(message)[1])
                else:
                    assert result.written == 2 * len(serialize(message)[1])
                if i == 2:
                    for connection in connections:
                        await connection.send("direct")
            for client in (deflate, plain):
                got = [await client.recv() for _ in range(6)]
                assert got == [*messages[:3], "direct", *messages[3:]]
                await client.close()

    run(main)


def test_backlog_limit_skips_and_reports_connections_that_are_behind(fan):
    async def main() -> None:
        async with server() as (port, connections):
            client = await connect(f"ws://{HOST}:{port}", compression=None)
            await until(lambda: len(connections) == 1)
            # Nothing is unsent, so a negative limit puts every connection "behind".
            result = fan(connections, "skipped", backlog_limit=-1)
            assert (result.sent, result.written, result.behind) == (0, 0, connections)
            assert fan(connections, "sent", backlog_limit=0).sent == 1
            assert await client.recv() == "sent"
            await client.close()

    run(main)


def test_a_fragmented_message_in_progress_is_not_interrupted(fan, caplog):
    async def main() -> None:
        async with server() as (port, connections):
            client = await connect(f"ws://{HOST}:{port}", compression=None)
            await until(lambda: len(connections) == 1)
            release = asyncio.Event()

            async def fragments() -> AsyncIterator[str]:
                yield "first half, "
                await release.wait()
                yield "second half"

            sending = asyncio.create_task(connections[0].send(fragments()))
            await until(lambda: connections[0].send_in_progress is not None)
            assert fan(connections, "would cut in").sent == 0
            release.set()
            await sending
            assert fan(connections, "after").sent == 1
            assert await client.recv() == "first half, second half"
            assert await client.recv() == "after"
            await client.close()

    with caplog.at_level(logging.WARNING):
        run(main)
    assert "skipped broadcast: sending a fragmented message" in caplog.text


def test_client_connections_mask_their_frames(fan):
    async def main() -> None:
        received: list[str] = []

        async def echo_back(websocket: ServerConnection) -> None:
            async for message in websocket:
                received.append(message)

        async with serve(echo_back, HOST, 0, compression=None) as running:
            port = running.sockets[0].getsockname()[1]
            client = await connect(f"ws://{HOST}:{port}", compression=None)
            # A server would close with 1002 on an unmasked frame: this one must be masked.
            assert fan([client], "from a client").sent == 1
            await until(lambda: received == ["from a client"])
            await client.close()

    run(main)


@pytest.mark.parametrize("limit", [None, 8 * 1024])
def test_no_connections_is_fine(fan, limit):
    assert fan([], "nobody", backlog_limit=limit).sent == 0


def test_the_fallback_forced_reaches_every_lesson_that_imported_fanout(monkeypatch):
    """``fanout`` is a function of its own: the implementation it calls is chosen once, and
    a lesson that imported the name (the ball) uses whichever that is."""
    import json

    from websockets.sync.client import connect as sync_connect

    from workshop_lib import start_server
    from workshop_lib.ball.server import BallLesson

    calls: list[int] = []

    def fallback(*args, **kwargs):
        calls.append(1)
        return fanout_module._broadcast_fanout(*args, **kwargs)

    monkeypatch.setattr(fanout_module, "_fanout", fallback)
    with (
        start_server(port=0, name="fanout-fallback", lessons=[BallLesson()]) as server,
        sync_connect(server.links.ws("/ball"), proxy=None) as websocket,
    ):
        ticks = [json.loads(websocket.recv(timeout=5))["tick"] for _ in range(5)]
    assert ticks == sorted(ticks) and ticks[-1] > ticks[0]  # frames of a ticking ball
    assert calls, "the ball's frames did not go through the forced fallback"
