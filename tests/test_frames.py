"""The frame inspector of lesson 01: real frames, taken apart with websockets' parser."""

from __future__ import annotations

from websockets.frames import Close, Frame, Opcode

from workshop_lib.echo.frames import FrameTable, client_bytes, server_bytes


def test_a_server_frame_shows_its_header_and_payload():
    (row,) = FrameTable.from_bytes(server_bytes(Frame(Opcode.TEXT, b"hello")), mask=False).rows
    assert row.raw[:2] == b"\x81\x05"  # FIN + text, unmasked, length 5
    assert (row.frame.fin, row.frame.opcode, row.masked, row.mask_key) == (
        True, Opcode.TEXT, False, None,
    )  # fmt: skip
    assert row.payload == "'hello'"


def test_client_frames_are_masked_with_a_fresh_key_and_unmask_to_the_same_payload():
    frames = [
        Frame(Opcode.BINARY, b"\x00" * 200),
        Frame(Opcode.CLOSE, Close(1000, "bye").serialize()),
    ]
    first = FrameTable.from_bytes(client_bytes(*frames), mask=True).rows
    second = FrameTable.from_bytes(client_bytes(*frames), mask=True).rows
    assert all(r.masked and len(r.mask_key) == 4 for r in first)
    assert first[0].raw[1] == 0x80 | 126  # masked, and a 2-byte length follows
    assert first[0].raw != second[0].raw  # another key, other bytes ...
    assert first[0].frame.data == second[0].frame.data == b"\x00" * 200  # ... same payload
    assert first[1].payload == "code 1000, reason 'bye'"
    html = FrameTable(first)._repr_html_()
    assert 'data-opcode="BINARY"' in html and "key " + first[0].mask_key.hex() in html


def test_fragments_show_as_frames_with_continuations():
    data = server_bytes(Frame(Opcode.TEXT, b"one ", fin=False), Frame(Opcode.CONT, b"two"))
    rows = FrameTable.from_bytes(data, mask=False).rows
    assert [(r.frame.opcode, r.frame.fin) for r in rows] == [
        (Opcode.TEXT, False),
        (Opcode.CONT, True),
    ]
