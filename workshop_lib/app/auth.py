"""Who may connect: a shared token, and an allow-list of origins.

A server started with a token asks every WebSocket client for it, in one of two ways:

* **a header**, for programs: ``Authorization: Bearer <token>``. A missing or wrong one is
  refused at the handshake with HTTP 401, before any WebSocket exists;
* **a first message**, for browsers, whose WebSocket API cannot set headers:
  ``{"type": "auth", "token": "<token>"}`` within ``grace`` seconds of connecting, answered
  by ``{"type": "auth.ok"}``. Anything else closes the connection with 4001. A request
  counts as a browser's when it has an ``Origin`` header: browsers always send one, and
  programs normally do not.

Never in the URL: addresses end up in access logs, proxies and browser history.

Browsers also send an ``Origin`` header, which is how a server tells its own pages from a
foreign site's script opening a WebSocket to it with the visitor's network position
(cross-site WebSocket hijacking). Programs send no ``Origin`` and are let through::

    guard = Guard(token="s3cret", loopback=True)
    refusal = guard.check_handshake(request)     # None, or Refusal(status, explanation, reason)
    if await guard.authenticate(websocket): ...  # first-message auth, after the handshake
"""

from __future__ import annotations

import asyncio
import hmac
import http
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from ..wire.closing import close_with
from ..wire.protocol import Close, encode

__all__ = [
    "AUTH_GRACE",
    "UNAUTHORIZED",
    "Guard",
    "RedactFilter",
    "Refusal",
    "is_loopback",
    "new_token",
    "tokens_match",
]

UNAUTHORIZED = Close.UNAUTHORIZED  # close code: no token, or a wrong one
AUTH_GRACE = 5.0  # seconds a browser has to send its auth event


class Refusal(NamedTuple):
    """Why a handshake is refused: its HTTP status, a line for the client, a short reason."""

    status: http.HTTPStatus
    explanation: str
    reason: str  # for the server's log and /api/stats, e.g. "wrong token"


def new_token() -> str:
    """A fresh random token, easy to read out and type: 22 URL-safe characters (128 bits).

    Never one that starts with "-": ``--token -x...`` would read as an option on a command
    line (it made ``client echo --token`` fail, about one time in 32).
    """
    while (token := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return token


def tokens_match(given: str, expected: str) -> bool:
    """Compare in constant time, so response times leak nothing about the right token."""
    # compare_digest() takes ASCII str or bytes; a token typed with an accent is just wrong.
    # "surrogatepass": a JSON auth event can carry a lone surrogate ("\ud800"), which plain
    # UTF-8 cannot encode; it must be a wrong token, not an exception.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def is_loopback(host: str) -> bool:
    """True for names and addresses of this machine only: ``localhost``, 127.x, ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """The server's rules for who may open a WebSocket.

    ``token``: required from every client when set (``None``: anyone may connect).
    ``loopback``: the server listens on this machine only; then pages from any loopback
    origin (JupyterLab's ``http://localhost:8888`` included) are welcome. A server reachable
    from the network also accepts its own pages (same origin). ``origins``: more origins to
    accept, e.g. ``{"https://hub.example.org"}``.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        loopback: bool = True,
        origins: Iterable[str] = (),
        grace: float = AUTH_GRACE,
    ) -> None:
        if token is not None and not token.strip():
            raise ValueError("a token cannot be empty; use new_token() for a random one")
        self.token = token
        self.loopback = loopback
        self.origins = {origin.rstrip("/").lower() for origin in origins}
        self.grace = grace

    # -- at the handshake -------------------------------------------------------------------

    def check_handshake(
        self, request: Request, credential: str | None = None, *, issued: bool = False
    ) -> Refusal | None:
        """Why this upgrade request must be refused, or None to let it through.

        ``credential``: a token the lesson found elsewhere in the request (an ``api-key``
        header, a subprotocol), checked like the header's when no ``Authorization`` came.
        ``issued``: the request's key is one a lesson issued (Realtime's ``ek_`` keys),
        which that lesson checks instead of the token; the other rules still apply.
        Malformed requests (two ``Authorization`` headers, an ``Origin`` that is no origin)
        are refused with 400 here, never with an exception.
        """
        for name in ("Host", "Origin", "Authorization"):
            if (count := len(request.headers.get_all(name))) > 1:
                return Refusal(
                    http.HTTPStatus.BAD_REQUEST,
                    f"Send one {name} header, not {count}.\n",
                    f"{count} {name} headers",
                )
        # The request target is a path and a query: urlsplit() would read "//host" as an
        # address, and raise on "//[".
        query = parse_qs(request.path.partition("?")[2])
        if "token" in query or "access_token" in query:
            return Refusal(
                http.HTTPStatus.BAD_REQUEST,
                "Do not put a token in the URL: URLs end up in logs. Send the header "
                '"Authorization: Bearer <token>", or {"type": "auth", "token": ...} as the '
                "first message.\n",
                "token in the URL",
            )
        origin = request.headers.get("Origin")
        if origin is not None and _split_origin(origin) is None:
            return Refusal(
                http.HTTPStatus.BAD_REQUEST,
                f"The Origin header {origin[:100]!r} is not an origin (scheme://host[:port]).\n",
                "unparsable Origin",
            )
        if origin is not None and not self.origin_allowed(origin, request.headers.get("Host")):
            return Refusal(
                http.HTTPStatus.FORBIDDEN,
                f"Origin {origin} may not open WebSockets here. Open the page this server "
                "serves, or start the server with origins=[...] to allow another site.\n",
                "foreign Origin",
            )
        if issued:
            return None
        header = request.headers.get("Authorization")
        if self.token is not None and header is None and credential is not None:
            if tokens_match(credential, self.token):
                return None
            return Refusal(http.HTTPStatus.UNAUTHORIZED, "Wrong token (API key).\n", "wrong token")
        if self.token is not None and header is None and origin is None:
            return Refusal(
                http.HTTPStatus.UNAUTHORIZED,
                "This server needs a token: send the header "
                '"Authorization: Bearer <token>" (a browser page sends '
                '{"type": "auth", "token": ...} as its first message instead).\n',
                "no token",
            )
        if self.token is not None and header is not None:
            return self._wrong_bearer(header)
        return None

    def check_request(self, request: Request, credential: str | None = None) -> Refusal | None:
        """Why a plain HTTP request for a lesson's data must be refused, or None.

        The header only: unlike a WebSocket, a browser's ``fetch()`` can send it, so there is
        no first-message login here. ``credential``: a token the route's lesson found
        elsewhere (Azure's ``api-key``), checked when no ``Authorization`` came.
        """
        if self.token is None:
            return None
        if len(request.headers.get_all("Authorization")) > 1:
            return Refusal(
                http.HTTPStatus.BAD_REQUEST, "Send one Authorization header.\n", "2 headers"
            )
        header = request.headers.get("Authorization")
        if header is None and credential is not None:
            if tokens_match(credential, self.token):
                return None
            return Refusal(http.HTTPStatus.UNAUTHORIZED, "Wrong token (API key).\n", "wrong token")
        if header is None:
            return Refusal(
                http.HTTPStatus.UNAUTHORIZED,
                'This server needs a token: send the header "Authorization: Bearer <token>".\n',
                "no token",
            )
        return self._wrong_bearer(header)

    def _wrong_bearer(self, header: str) -> Refusal | None:
        """The refusal of an ``Authorization`` header that is not ``Bearer <the token>``."""
        assert self.token is not None
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and tokens_match(given.strip(), self.token):
            return None
        return Refusal(
            http.HTTPStatus.UNAUTHORIZED,
            "Wrong token in the Authorization header.\n",
            "wrong token",
        )

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """Whether a page from ``origin`` may connect (``host``: the request's Host header)."""
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = _split_origin(origin)
        if parts is None or parts.scheme not in ("http", "https") or parts.hostname is None:
            return False  # "null" (a file:// page, a sandboxed frame), garbage and the like
        if is_loopback(parts.hostname):
            return True
        # Same origin. Not for a loopback server: there a foreign page can only match its Host
        # by DNS rebinding (a name of the attacker's that resolves to 127.0.0.1).
        return not self.loopback and host is not None and parts.netloc == host.lower()

    def needs_first_message(
        self, connection: ServerConnection, credential: str | None = None
    ) -> bool:
        """True if this client must still authenticate (a token is set, and none came yet).

        ``credential``: what the lesson found in the handshake (checked there already).
        """
        request = connection.request
        return (
            self.token is not None
            and credential is None
            and (request is None or "Authorization" not in request.headers)
        )

    # -- after the handshake ----------------------------------------------------------------

    async def authenticate(self, websocket: ServerConnection) -> bool:
        """Wait for the client's auth event; True if it is right, else say why and close (4001)."""
        assert self.token is not None
        try:
            async with asyncio.timeout(self.grace):
                message = await websocket.recv()
        except TimeoutError:
            await close_with(
                websocket,
                UNAUTHORIZED,
                f'send {{"type": "auth", "token": ...}} within {self.grace:g} s',
                message=f'no token: this server needs {{"type": "auth", "token": ...}} as the '
                f"first message, within {self.grace:g} s of connecting",
                any_path=True,
            )
            return False
        except ConnectionClosed:
            return False
        token = _auth_token(message)
        if token is None:
            await close_with(
                websocket,
                UNAUTHORIZED,
                'this server needs {"type": "auth", "token": ...} first',
                message='no token: this server needs {"type": "auth", "token": ...} as the '
                "first message; ask whoever runs it for the token",
                any_path=True,
            )
            return False
        if not tokens_match(token, self.token):
            await close_with(
                websocket,
                UNAUTHORIZED,
                "wrong token",
                message="wrong token: check it with whoever runs the server (server.token "
                "in its notebook, or the line `serve` printed), then connect again",
                any_path=True,
            )
            return False
        await websocket.send(encode({"type": "auth.ok"}))
        return True


def _split_origin(origin: str) -> SplitResult | None:
    """``origin`` split into scheme and address, or None if it cannot be (``http://[::1``)."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return None
    return parts


def _auth_token(message: str | bytes) -> str | None:
    """The token of an ``auth`` event, or None if the message is anything else."""
    try:
        event = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return None
    if isinstance(event, dict) and event.get("type") == "auth":
        token = event.get("token")
        return token if isinstance(token, str) else None
    return None


# What a handshake's debug log (``-v``) could quote of a credential, right or wrong: the
# value of an Authorization or api-key header, and a browser's key subprotocol word (the
# Realtime API's, and the instructor's on the room page). And an ephemeral key (Realtime's
# ek_...) wherever it shows.
_CREDENTIALS = re.compile(
    r"(?i)(\b(?:authorization|api-key)\s*[:=]\s*)[^\r\n]*"
    r"|((?:openai-insecure-api-key|workshop-key)\.)[^\s,;'\"]*"
    r"|(?-i:\b(ek_))[A-Za-z0-9_-]+"
)


def _redact(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2) or match.group(3)}[redacted]"


class RedactFilter(logging.Filter):
    """Replaces a secret with ``label`` (``[token]``), and any credential a header or a key
    subprotocol carries (a wrong one too) with ``[redacted]``, in every record that passes
    (attach to a logger)."""

    def __init__(self, secret: str | None = None, label: str = "[token]") -> None:
        super().__init__()
        self.secret = secret
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _CREDENTIALS.sub(_redact, message)
        if self.secret:
            redacted = redacted.replace(self.secret, self.label)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
