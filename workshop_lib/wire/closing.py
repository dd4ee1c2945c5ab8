"""Closing a connection for a reason, so that the reason survives a proxy.

jupyter-server-proxy (JupyterHub, Binder) forwards WebSocket messages but not close codes:
the client behind it sees 1000, 1005 or 1006 whatever the server closed with, and cannot
tell "wrong token" or "rate limited" from a dropped line. So every close for a reason goes
through :func:`close_with`, which first sends the reason in band::

    {"type": "error", "code": "unauthorized", "message": "wrong token: ...", "close": 4001}

    await close_with(websocket, Close.UNAUTHORIZED, "wrong token", message="wrong token: ...")

and then closes with the code as before. The size limit (1009) is websockets' own: its
parser refuses an oversized frame before any handler sees it, so :func:`announce_too_big`
makes the connection's protocol say it in band first (:class:`_AnnouncesTooBig`).

A client that keeps sending (a flooder) is given :data:`CLOSE_GRACE` to read the event and
close first (``grace=``): jupyter-server-proxy, once the server's close frame reached it,
cuts the client's TCP connection on the client's next message, and a client whose next
send then fails (websockets' sync client) drops what it had not read yet, the event too.
:func:`close_sent` says which close the server sent, for its log (the connection's own
``close_code`` is the client's, or 1006 behind such a proxy).

It fails safe. :func:`announce_too_big` and :func:`close_sent` read websockets internals
(the Sans-I/O protocol's ``fail()``, ``parser``, ``reader``, ``close_sent``...; the
connection's ``protocol``), which a release may rename. At import
:func:`missing_internals` checks them; if one is missing, one WARNING is logged and each
falls back to public API (:data:`IMPLEMENTATION` says which is in use): a 1009 close
without the event before it, as websockets sends it, and the connection's own
``close_code`` and ``close_reason``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import Any

import websockets
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import CONNECTING, OPEN, Protocol
from websockets.server import ServerProtocol

from .internals import assigned_in, choose
from .protocol import closing_event, encode

__all__ = [
    "CLOSE_GRACE",
    "IMPLEMENTATION",
    "announce_too_big",
    "close_reason",
    "close_sent",
    "close_with",
    "missing_internals",
]

logger = logging.getLogger("workshop_lib.wire.closing")

# How long a flooder is given, after its closing event, to read it and close by itself (our
# clients do at once) before the server closes. Long enough for a client on a busy machine
# to get its reading thread scheduled; short enough that a client which never reads the
# events still sees its close within about a second.
CLOSE_GRACE = 1.0


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry (123 bytes of UTF-8, RFC 6455 5.5)."""
    data = text.encode()
    if len(data) <= 123:
        return text
    return data[:120].decode(errors="ignore") + "..."


async def close_with(
    websocket: ServerConnection,
    code: int,
    reason: str,
    *,
    message: str | None = None,
    name: str | None = None,
    event: dict[str, Any] | None = None,
    any_path: bool = False,
    grace: float = 0.0,
) -> None:
    """Send the ``error`` event for ``code``, then close with ``code`` and ``reason``.

    ``message``: the event's text for people (default: ``reason``); ``name``: its ``code``
    (default: :data:`~workshop_lib.wire.protocol.CLOSE_ERRORS`'s); ``event``: another lesson's
    own error shape to send instead (the Realtime API's), which gets ``close`` added;
    ``any_path``: the core's own closes, see :func:`~workshop_lib.wire.protocol.closing_event`.

    The event is written without waiting (``websockets.broadcast``): ``send()`` would wait
    for a client that does not read (a chat member too slow for the room, a flooder), and
    the close must not. Written, it sits right before the close frame, so a client that
    reads up to the close reads the event first. One whose backlog never drains reads
    neither: ``close()`` gives up after the close timeout and cuts the TCP connection, and
    that client sees 1006 as it would have without the event.

    ``grace``: seconds to wait, after the event, for the client to close by itself before
    the server closes, reading and dropping what it sends meanwhile (and during the closing
    handshake, so that a flood queued in front of the client's close frame does not hide
    it until the close timeout). Only for a caller that is the connection's one reader
    (its handler, between two messages) and has taken it out of everything that sends to
    it (the room, the ball's viewers): the event must stay the last message. Behind
    jupyter-server-proxy the server's close frame makes the proxy cut the client's side at
    the client's next message, possibly before the client read the event; a client that
    closes when it reads the event (ReadingClient, the pages' Connection) never meets that.
    """
    payload = (
        {**event, "close": int(code)}
        if event is not None
        else closing_event(code, message or reason, name, any_path=any_path)
    )
    # broadcast() skips a connection that is already closing, or midway through sending a
    # fragmented message (a data frame may not go in between); the close still goes out.
    websockets.broadcast([websocket], encode(payload))
    if grace <= 0:
        await websocket.close(code, close_reason(reason))
        return
    dropping = asyncio.ensure_future(_drop_until_closed(websocket))
    try:
        # Ends early when the client closes (its close frame ends the dropping).
        await asyncio.wait({dropping}, timeout=grace)
        await websocket.close(code, close_reason(reason))  # nothing to do if it closed
    finally:
        dropping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dropping


async def _drop_until_closed(websocket: ServerConnection) -> None:
    """Read and drop messages until the connection closes."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await websocket.recv(decode=False)


class _AnnouncesTooBig(ServerProtocol):
    """websockets' server protocol, saying in band why it fails a connection with 1009."""

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        if self.state is CONNECTING:
            # Bytes after the request, before any response: websockets reads them as
            # frames at once, and failing would end the connection before the request is
            # answered. A plain HTTP client pipelining a second request, or sending an
            # extra CRLF, would get no answer at all. The bytes are dropped instead, and
            # the response (which closes the connection, or opens the WebSocket) goes out.
            self.parser = self._ignore_early_bytes()
            next(self.parser)
            return
        # Called from the parser with the frame's size in ``reason``; the protection is
        # websockets' own (the frame is refused from its header, never buffered whole).
        # Only while OPEN (a close frame may follow no data frame) and not midway through
        # a fragmented message of ours (a data frame in between would break it).
        if (
            code == CloseCode.MESSAGE_TOO_BIG
            and self.state is OPEN
            and not self.expect_continuation_frame
        ):
            limit = self.max_message_size
            if not limit:
                text = reason
            elif "after reading" in reason:
                # websockets' reason counts the last frame and what came before it: a
                # message sent in fragments (perhaps thousands of tiny ones), said plainly.
                text = (
                    f"a message sent in fragments grew past {limit} bytes, this server's "
                    f"limit for one message (its fragments add up): send messages of at most "
                    f"{limit} bytes in all"
                )
            else:
                text = f"{reason}: send messages of at most {limit} bytes"
            self.send_text(encode(closing_event(code, text, any_path=True)).encode())
        super().fail(code, reason)

    def _ignore_early_bytes(self) -> Generator[None]:
        while not (yield from self.reader.at_eof()):
            self.reader.discard()
        # The client left before its answer: end as websockets ends any connection.
        ServerProtocol.fail(self, CloseCode.PROTOCOL_ERROR, "")


def announce_too_big(protocol: ServerProtocol) -> ServerProtocol:
    """Make ``protocol`` send an ``error`` event before its 1009 close; returns it.

    websockets' ``serve()`` builds each connection's ``ServerProtocol`` itself and offers
    no hook for its class, only for the connection's (``create_connection``), which gets
    the protocol already made. The subclass adds no state, so the object's class is
    swapped in place; anything but a plain ``ServerProtocol`` is left as it is, and so is
    every protocol when this websockets lacks what the subclass reads (the fallback).
    """
    if IMPLEMENTATION == "in band" and type(protocol) is ServerProtocol:
        protocol.__class__ = _AnnouncesTooBig
    return protocol


def close_sent(connection: Any) -> tuple[int | None, str | None]:
    """The close code and reason this side sent on ``connection`` (a websockets asyncio
    connection), once it is closing; if none was sent, or in the fallback, the
    connection's own ``close_code`` and ``close_reason``."""
    sent = (
        getattr(getattr(connection, "protocol", None), "close_sent", None)
        if IMPLEMENTATION == "in band"
        else None
    )
    if sent is not None:
        return sent.code, sent.reason
    return connection.close_code, connection.close_reason


# -- failing safe: the internals above, checked at import ----------------------------------

# Read on a ServerProtocol by _AnnouncesTooBig and close_sent().
PROTOCOL_ATTRIBUTES = (
    "state",
    "expect_continuation_frame",
    "max_message_size",
    "send_text",
    "parser",
    "reader",
    "close_sent",
)


def missing_internals() -> list[str]:
    """The websockets internals this module reads that this websockets lacks ([] if none)."""
    missing: list[str] = []
    try:
        protocol = ServerProtocol()
    except Exception as exc:
        return [f"ServerProtocol() ({exc!r})"]
    missing += [
        f"ServerProtocol.{name}" for name in PROTOCOL_ATTRIBUTES if not hasattr(protocol, name)
    ]
    reader = getattr(protocol, "reader", None)
    missing += [
        f"ServerProtocol.reader.{name}()"
        for name in ("at_eof", "discard")
        if not callable(getattr(reader, name, None))
    ]
    # The parser reports an oversized frame by calling fail(), the method overridden.
    parse = getattr(getattr(Protocol, "parse", None), "__code__", None)
    if parse is None or not {"fail", "MESSAGE_TOO_BIG"} <= set(parse.co_names):
        missing.append("Protocol.parse() calling fail(MESSAGE_TOO_BIG)")
    try:
        protocol.__class__ = _AnnouncesTooBig
    except TypeError as exc:
        missing.append(f"ServerProtocol's class swapped for a subclass ({exc})")
    # The asyncio connection keeps its Sans-I/O protocol here (checked as fanout.py does).
    if not assigned_in(Connection, "__init__", "protocol"):
        missing.append("Connection.protocol (set in __init__)")
    return missing


# What the fallback does instead, for its one WARNING.
FALLBACK_DOES = (
    "a message over the size limit is closed with 1009 without an error event first, and "
    "refusals are logged with the client's close code"
)


def _select(missing: list[str]) -> str:
    """``"in band"``, or ``"websockets"`` (with one WARNING) if internals are missing."""
    return choose(missing, "in band", "websockets", logger, "closing.py", FALLBACK_DOES)


IMPLEMENTATION = _select(missing_internals())
