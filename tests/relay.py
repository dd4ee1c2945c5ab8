"""A real TCP relay that forwards everything but close codes, as jupyter-server-proxy does.

jupyter-server-proxy (JupyterHub, Binder) forwards a WebSocket's messages between the
browser and a server on another port, but ends the browser's side with a close of its own:
the client sees 1000, 1005 or 1006 whatever the server sent. This relay does the same,
honestly and at the byte level: plain HTTP goes through untouched, and after a ``101``
answer it reads the server's frames one by one (RFC 6455 5.2), forwards every data and
control frame, and in place of the server's close frame either cuts the TCP connection
(``mode="cut"``: the client sees 1006) or sends a close frame of its own with no code
(``mode="no_status"``: the client sees 1005)::

    with CloseDroppingRelay(server.port) as relay:
        ChatClient(f"ws://127.0.0.1:{relay.port}/chat", "ada")
        relay.closes      # the close codes the server sent, which the client never saw
        relay.upgrades    # WebSocket connections made through it
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from workshop_lib.server.loop import LoopThread

__all__ = ["CloseDroppingRelay"]

_CLOSE = 0x8


class CloseDroppingRelay:
    """Listens on ``127.0.0.1:port`` (a free one) and relays to ``127.0.0.1:upstream``."""

    def __init__(self, upstream: int, mode: str = "cut") -> None:
        if mode not in ("cut", "no_status"):
            raise ValueError(f"mode is 'cut' or 'no_status', not {mode!r}")
        self.upstream = upstream
        self.mode = mode
        self.port = 0
        self.closes: list[int | None] = []  # the server's close codes, in order
        self.upgrades = 0  # WebSocket handshakes that went through
        self._loop = LoopThread("close-dropping-relay")
        self._server: asyncio.Server | None = None

    def __enter__(self) -> CloseDroppingRelay:
        self._loop.start()
        self._server = self._loop.run(asyncio.start_server(self._relay, "127.0.0.1", 0), timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()

        self._loop.run(stop(), timeout=10)
        self._loop.stop()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.close()
            return
        up = asyncio.ensure_future(self._pump(client_r, server_w))
        try:
            await self._down(server_r, client_w)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            up.cancel()
            for writer in (client_w, server_w):
                writer.close()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await up

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The client's bytes, as they are (its frames are masked; nothing to change)."""
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()

    async def _down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The server's bytes: its HTTP head as it is, then frame by frame."""
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        if not head.startswith((b"HTTP/1.1 101", b"HTTP/1.0 101")):
            while chunk := await reader.read(65536):  # a page, /healthz, a refusal
                writer.write(chunk)
            return
        self.upgrades += 1
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            extended = b""
            if length == 126:
                extended = await reader.readexactly(2)
                (length,) = struct.unpack("!H", extended)
            elif length == 127:
                extended = await reader.readexactly(8)
                (length,) = struct.unpack("!Q", extended)
            mask = await reader.readexactly(4) if second & 0x80 else b""
            payload = await reader.readexactly(length)
            if first & 0x0F == _CLOSE:
                self.closes.append(struct.unpack("!H", payload[:2])[0] if length >= 2 else None)
                if self.mode == "no_status":
                    writer.write(b"\x88\x00")  # a close frame without a code: 1005
                    await writer.drain()
                return  # the caller closes both sides: without a close frame, 1006
            writer.write(bytes([first, second]) + extended + mask + payload)
            await writer.drain()
