"""bench/_readers.py: the cheap readers the scale-out figures rest on, checked against websockets.

The frame parser must split a server's byte stream exactly as websockets' own reader does,
however the bytes are cut into reads; and a Reader on a real socket must do websockets'
handshake, answer pings (or the server would drop it) and see the close code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import itertools
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

_spec = importlib.util.spec_from_file_location(
    "_readers", pathlib.Path(__file__).parents[1] / "bench" / "_readers.py"
)
readers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readers)

HOST = "127.0.0.1"

# Payload sizes on both sides of each length encoding (7 bits, 16 bits, 64 bits).
SIZES = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]) | st.integers(0, 300)
FRAMES = st.lists(
    st.tuples(st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG]), SIZES),
    min_size=1,
    max_size=8,
)


def run(main) -> None:
    """``asyncio.run(main())`` on a thread of its own (the browser tests keep a loop on the
    main thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result(timeout=60)


def websockets_reads(stream: bytes, cuts: list[int]) -> list[tuple[int, bool, bytes]]:
    """What websockets' own client-side reader makes of ``stream``, read in pieces."""
    protocol = ClientProtocol(parse_uri("ws://example/"), state=State.OPEN)
    frames = []
    for piece in pieces(stream, cuts):
        protocol.receive_data(piece)
        frames += [(int(f.opcode), f.fin, f.data) for f in protocol.events_received()]
    return frames


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(FRAMES, st.lists(st.integers(0, 1 << 20), max_size=12))
def test_the_parser_reads_what_websockets_reads_however_the_bytes_are_cut(frames, cuts):
    sent = [
        Frame(opcode, (b"x" if opcode is Opcode.TEXT else b"\xfe") * size)
        for opcode, size in frames
        if not (opcode in (Opcode.PING, Opcode.PONG) and size > 125)  # control: ≤ 125 bytes
    ]
    if not sent:
        return
    stream = b"".join(f.serialize(mask=False, extensions=[]) for f in sent)
    parser = readers.FrameParser()
    mine = [frame for piece in pieces(stream, cuts) for frame in parser.feed(piece)]
    assert mine == websockets_reads(stream, cuts)
    assert parser.rest == b""


@settings(max_examples=40, deadline=None)
@given(FRAMES, st.lists(st.integers(0, 1 << 20), max_size=6), st.booleans())
def test_a_readers_messages_are_websockets_data_frames_however_the_bytes_are_cut(
    frames, cuts, whole
):
    # whole: one read per frame, the reader's fast path; else cut anywhere.
    sent = [
        Frame(opcode, b"y" * (size if opcode in (Opcode.TEXT, Opcode.BINARY) else size % 126))
        for opcode, size in frames
    ]
    serialized = [f.serialize(mask=False, extensions=[]) for f in sent]
    stream = b"".join(serialized)
    reads = serialized if whole else pieces(stream, cuts)
    expected = [data for op, _, data in websockets_reads(stream, cuts) if op in (1, 2)]

    async def main() -> list[bytes]:
        reader = Recorder("ws://example/")
        reader._open = True  # as after the upgrade
        reader.transport = Sink()
        for data in reads:
            reader.data_received(data)
        return reader.got

    assert asyncio.run(main()) == expected


class Sink:
    """Where a reader's pongs go in the test above (no socket)."""

    def write(self, data: bytes) -> None:
        pass


def test_the_parser_refuses_a_masked_frame_and_an_oversized_one():
    with pytest.raises(readers.ProtocolError, match="masked"):
        readers.FrameParser().feed(Frame(Opcode.TEXT, b"hi").serialize(mask=True, extensions=[]))
    with pytest.raises(readers.ProtocolError, match="limit"):
        readers.FrameParser(max_size=10).feed(b"\x82\x7e\x01\x00")


class Recorder(readers.Reader):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.got: list[bytes] = []

    def on_message(self, payload: bytes, now: float) -> None:
        self.got.append(payload)


def test_a_reader_shakes_hands_reads_answers_pings_and_sees_the_close():
    messages = ["a", "é" * 200, "z" * 70_000, b"\x00\x01"]
    heard: list[str] = []

    async def handler(websocket: ServerConnection) -> None:
        heard.append(await websocket.recv())
        for message in messages:
            await websocket.send(message)
        # The reader must answer, or websockets would close it after its ping timeout.
        await asyncio.wait_for(await websocket.ping(b"are you there"), 5)
        await websocket.close(4321, "done")

    async def main() -> None:
        async with serve(handler, HOST, 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://{HOST}:{port}/x"
            (reader,) = await readers.open_readers(Recorder, [url], 1, timeout=10)
            reader.send_text("hello")
            await asyncio.wait_for(reader.closed, 10)
        assert heard == ["hello"]
        assert reader.got == [m.encode() if isinstance(m, str) else m for m in messages]
        assert reader.close_code == 4321
        assert reader.errors == 0

    run(main)


def test_a_refused_upgrade_is_an_error_at_open():
    def refuse(connection, request):
        return Response(401, "Unauthorized", Headers({"Content-Length": "0"}), b"")

    async def main() -> None:
        async with serve(lambda ws: None, HOST, 0, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(InvalidStatus, match="401"):
                await readers.open_readers(Recorder, [f"ws://{HOST}:{port}/"], 1, timeout=10)

    run(main)
