"""A WebSocket client with no manners: it sends what a polite client never would.

The lessons use it to provoke the server on purpose (a client that stops reading, invalid
UTF-8, an unmasked frame) and the tests use it to prove the server answers well::

    stalled = RawClient("127.0.0.1", server.port, "/ball", receive_buffer=4096)
    ...                      # it completed the handshake and will never read a byte
    stalled.vanish()         # drop the TCP connection without a closing handshake

What it receives is read with websockets' own Sans-I/O frame parser, never by searching
bytes: a ping's random payload or a JSON text can hold any byte, the close opcode's too.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Generator, Mapping
from typing import TypeVar

from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

__all__ = ["RawClient"]

T = TypeVar("T")


class RawClient:
    """Does the opening handshake by hand on a plain socket, then sends arbitrary frames.

    ``headers``: more handshake headers (``server.auth_headers`` for a token server).
    ``response`` is the server's handshake response, as bytes. A plain socket: no system
    proxy is ever involved.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/echo",
        receive_buffer: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(5)
        if receive_buffer is not None:  # before connecting, or the window is already agreed
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{extra}"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        # The bytes after the response's head are already frames: they go to the parser.
        self._reader = StreamReader()
        self.response = self._read_headers()

    def _read_headers(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, separator, rest = data.partition(b"\r\n\r\n")
        self._reader.feed_data(rest)
        return head + separator

    def send_frame(self, opcode: Opcode, payload: bytes) -> None:
        """Send one masked frame, whatever it holds."""
        self.sock.sendall(Frame(opcode, payload).serialize(mask=True, extensions=[]))

    def read_frame(self) -> Frame | None:
        """The server's next frame (text, binary, ping, close, ...); None once the
        connection ended (or nothing came within the socket's 5 s timeout)."""
        return self._drive(self._parse_frame())

    def close_code(self) -> int | None:
        """Read frames until the server's close frame and return its code (None if the
        connection ended without one)."""
        while (frame := self.read_frame()) is not None:
            if frame.opcode is Opcode.CLOSE:
                return Close.parse(frame.data).code
        return None

    def _parse_frame(self) -> Generator[None, None, Frame | None]:
        try:
            # Server frames are unmasked; no size limit: this client wants to see anything.
            return (yield from Frame.parse(self._reader.read_exact, mask=False))
        except EOFError:
            return None

    def _drive(self, parser: Generator[None, None, T]) -> T:
        """Run a Sans-I/O parser, feeding it from the socket whenever it wants more bytes."""
        try:
            next(parser)
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except OSError:  # a timeout or a reset: no more bytes will come
                    chunk = b""
                if chunk:
                    self._reader.feed_data(chunk)
                else:
                    self._reader.feed_eof()
                parser.send(None)
        except StopIteration as done:
            return done.value

    def vanish(self) -> None:
        """Drop the TCP connection without a closing handshake, like a laptop lid closing."""
        # Linger 0: close() sends a reset instead of a FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
