"""A WebSocket client with no manners: it sends what a polite client never would.

The lessons use it to provoke the server on purpose (a client that stops reading, invalid
UTF-8, an unmasked frame) and the tests use it to prove the server answers well::

    stalled = RawClient("127.0.0.1", server.port, "/ball", receive_buffer=4096)
    ...                      # it completed the handshake and will never read a byte
    stalled.vanish()         # drop the TCP connection without a closing handshake
"""

from __future__ import annotations

import base64
import os
import socket
import struct

from websockets.frames import Frame, Opcode

__all__ = ["RawClient"]


class RawClient:
    """Does the opening handshake by hand on a plain socket, then sends arbitrary frames."""

    def __init__(
        self, host: str, port: int, path: str = "/echo", receive_buffer: int | None = None
    ) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(5)
        if receive_buffer is not None:  # before connecting, or the window is already agreed
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.response = self._read_headers()

    def _read_headers(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def send_frame(self, opcode: Opcode, payload: bytes) -> None:
        """Send one masked frame, whatever it holds."""
        self.sock.sendall(Frame(opcode, payload).serialize(mask=True, extensions=[]))

    def close_code(self) -> int | None:
        """Read until the server's close frame and return its code (None if none came)."""
        data = b""
        while True:
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        # A close frame from a server: 0x88, length, then the 2-byte code.
        at = data.find(b"\x88")
        if at < 0 or len(data) < at + 4:
            return None
        return int.from_bytes(data[at + 2 : at + 4], "big")

    def vanish(self) -> None:
        """Drop the TCP connection without a closing handshake, like a laptop lid closing."""
        # Linger 0: close() sends a reset instead of a FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
