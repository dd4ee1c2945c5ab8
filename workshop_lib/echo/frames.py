"""WebSocket frames as bytes, taken apart with websockets' Sans-I/O frame parser.

    from workshop_lib.echo.frames import FrameTable, client_bytes
    FrameTable.from_bytes(client_bytes(Frame(Opcode.TEXT, b"hi")), mask=True)

Lesson 01's "under the hood" section shows what a client and a server really put on the
wire: each frame's FIN bit, opcode, mask bit and key, payload length and payload. The
payload and its unmasking are websockets' own (``Frame.parse``); the table only adds the
header bits a person wants to see.
"""

from __future__ import annotations

import html
from collections.abc import Generator, Iterable
from dataclasses import dataclass

from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

__all__ = ["FrameRow", "FrameTable", "client_bytes", "server_bytes"]


def client_bytes(*frames: Frame) -> bytes:
    """The frames as a client sends them: masked, each with a fresh random key (RFC 6455
    requires it, so that a page's script cannot choose the bytes a proxy sees)."""
    return b"".join(frame.serialize(mask=True, extensions=[]) for frame in frames)


def server_bytes(*frames: Frame) -> bytes:
    """The frames as a server sends them: unmasked."""
    return b"".join(frame.serialize(mask=False, extensions=[]) for frame in frames)


@dataclass(frozen=True)
class FrameRow:
    """One frame on the wire: its header fields, its raw bytes and its decoded payload."""

    raw: bytes
    frame: Frame
    masked: bool
    mask_key: bytes | None

    @property
    def payload(self) -> str:
        """The payload as a person reads it: text, a close code and reason, or hex."""
        data = self.frame.data
        if self.frame.opcode is Opcode.CLOSE and data:
            close = Close.parse(data)
            return f"code {close.code}, reason {close.reason!r}"
        if self.frame.opcode is Opcode.TEXT or self.frame.opcode is Opcode.CONT:
            try:
                return repr(bytes(data).decode())
            except UnicodeDecodeError:  # half of a character, in a fragment
                pass
        return bytes(data).hex(" ") or "(empty)"


class FrameTable:
    """A table of frames, shown as HTML in a notebook (``repr`` in a console)."""

    def __init__(self, rows: Iterable[FrameRow]) -> None:
        self.rows = list(rows)

    @classmethod
    def from_bytes(cls, data: bytes, *, mask: bool) -> FrameTable:
        """Parse ``data`` frame by frame; ``mask``: whether these are a client's frames."""
        reader = StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        rows = []
        while reader.buffer:
            start = len(data) - len(reader.buffer)
            frame = _run(Frame.parse(reader.read_exact, mask=mask))
            raw = data[start : len(data) - len(reader.buffer)]
            # Byte 1's top bit says "masked"; the 4-byte key follows the length fields.
            length_bytes = {126: 2, 127: 8}.get(raw[1] & 0x7F, 0)
            key = raw[2 + length_bytes : 6 + length_bytes] if raw[1] & 0x80 else None
            rows.append(FrameRow(raw, frame, bool(raw[1] & 0x80), key))
        return cls(rows)

    def __repr__(self) -> str:
        return "\n".join(
            f"FIN={int(r.frame.fin)} {r.frame.opcode.name:<6} masked={int(r.masked)} "
            f"length={len(r.frame.data):<5} {r.payload}"
            for r in self.rows
        )

    def _repr_html_(self) -> str:
        cell = 'style="padding:0.15em 0.8em 0.15em 0;text-align:left;vertical-align:top"'
        head = "".join(
            f"<th {cell}>{name}</th>"
            for name in ("bytes on the wire", "FIN", "opcode", "mask", "length", "payload")
        )
        body = "".join(
            f'<tr data-opcode="{r.frame.opcode.name}">'
            f"<td {cell}><code>{html.escape(_wire(r.raw))}</code></td>"
            f"<td {cell}>{int(r.frame.fin)}</td>"
            f"<td {cell}>{r.frame.opcode.value:#x} {r.frame.opcode.name}</td>"
            f"<td {cell}>{'key ' + r.mask_key.hex() if r.mask_key else 'none'}</td>"
            f"<td {cell}>{len(r.frame.data)}</td>"
            f"<td {cell}><code>{html.escape(r.payload)}</code></td></tr>"
            for r in self.rows
        )
        return (
            f'<table class="workshop-frames" style="border-collapse:collapse">'
            f"<tr>{head}</tr>{body}</table>"
        )


def _wire(raw: bytes, shown: int = 16) -> str:
    text = raw[:shown].hex(" ")
    return text + (f" … ({len(raw)} bytes)" if len(raw) > shown else "")


def _run(parser: Generator[None, None, Frame]) -> Frame:
    """Run a Sans-I/O parser over bytes that are all there already."""
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise ValueError("the bytes end in the middle of a frame")
