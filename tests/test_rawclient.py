"""RawClient reads what a server sends frame by frame (websockets' Sans-I/O parser)."""

from __future__ import annotations

import uuid

from websockets.frames import Opcode

from workshop_lib import start_server
from workshop_lib.clients.raw import RawClient

# A ping payload that looks like a close frame with code 25813 to a byte search.
LOOKS_LIKE_A_CLOSE = b"\x88\x02\x64\xd5"


async def ping_then_close(websocket):
    await websocket.ping(LOOKS_LIKE_A_CLOSE)
    await websocket.send("text with \x88 inside")
    await websocket.close(4000, "bye")


def test_close_code_skips_frames_whose_bytes_look_like_a_close():
    with start_server(
        port=0, name=f"raw-{uuid.uuid4().hex[:8]}", lessons=[], routes={"/rude": ping_then_close}
    ) as server:
        raw = RawClient("127.0.0.1", server.port, "/rude")
        assert b" 101 " in raw.response
        assert raw.close_code() == 4000
        raw.vanish()


def test_read_frame_shows_each_frame_in_order():
    with start_server(
        port=0, name=f"raw-{uuid.uuid4().hex[:8]}", lessons=[], routes={"/rude": ping_then_close}
    ) as server:
        raw = RawClient("127.0.0.1", server.port, "/rude")
        ping, text, close = raw.read_frame(), raw.read_frame(), raw.read_frame()
        assert (ping.opcode, ping.data) == (Opcode.PING, LOOKS_LIKE_A_CLOSE)
        assert (text.opcode, text.data) == (Opcode.TEXT, "text with \x88 inside".encode())
        assert close.opcode is Opcode.CLOSE
        raw.vanish()
        assert raw.read_frame() is None  # the connection is gone: no frame, no exception
