"""Lesson 05 on the network: a local, text-first server that speaks the Realtime API.

The official ``openai`` SDK connects to it unmodified, at the paths the real services use::

    AsyncOpenAI(api_key=..., websocket_base_url="ws://HOST:PORT/v1")       # /v1/realtime
    AsyncAzureOpenAI(api_key=..., api_version=..., azure_deployment=...,
                     websocket_base_url="ws://HOST:PORT/openai")           # /openai/realtime
    AsyncOpenAI(..., websocket_base_url="ws://HOST:PORT/openai/v1")        # Azure's v1 form

It takes the key where the real service does: ``Authorization: Bearer`` (read by the core),
Azure's ``api-key`` header, or, for a browser, the subprotocols ``realtime`` and
``openai-insecure-api-key.<key>``. On a server with a token the key is the token; a local
server without one takes any key. Either way an ephemeral key (``ek_...``, minted by
``POST /api/realtime/client_secret`` for a browser page, keys.py) opens sessions until it
expires, with the settings it was minted with; a made-up or expired one is refused. Settings::

    start_server(lessons=default_lessons(realtime={"responder": my_function, "delay": 0}))
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

# The chat's token bucket: the same rule (a burst, then a rate), counted per connection.
from ..app.rates import TokenBucket
from ..lesson import Handler, JsonRoute, Lesson, Page, Post
from ..wire.closing import close_with
from ..wire.protocol import Close
from .events import Event, RealtimeError, default_session
from .keys import DEFAULT_TTL, EphemeralKey, KeyStore, check_request, is_ephemeral
from .model import local_model
from .responder import Responder
from .session import Counts, RealtimeSession, updated
from .writer import EventWriter

__all__ = [
    "BROWSER_SECRET",
    "CLIENT_SECRETS",
    "KEY_SUBPROTOCOL",
    "MAX_EVENT",
    "PATHS",
    "SUBPROTOCOL",
    "RealtimeLesson",
]

logger = logging.getLogger("workshop_lib.realtime")

# Where the SDKs dial: OpenAI's GA path, Azure's classic and v1 paths.
PATHS = ("/v1/realtime", "/openai/realtime", "/openai/v1/realtime")
SUBPROTOCOL = "realtime"
KEY_SUBPROTOCOL = "openai-insecure-api-key."  # a browser's key, as the real API takes it
# The service takes client events up to 15 MiB (seconds of audio in one append); the rest of
# the course keeps the server's 64 KiB. The session's audio buffer keeps its own cap.
MAX_EVENT = 15 * 1024 * 1024
# The small back-end route a browser page calls for an ephemeral key (an empty POST).
BROWSER_SECRET = "/api/realtime/client_secret"
# Where the SDK's client.realtime.client_secrets.create() POSTs its JSON: OpenAI's path,
# Azure's v1 path, and the path AsyncAzureOpenAI(azure_endpoint=...) builds.
CLIENT_SECRETS = (
    "/v1/realtime/client_secrets",
    "/openai/v1/realtime/client_secrets",
    "/openai/realtime/client_secrets",
)
# The largest client_secrets body read: about what websockets already reads of a request's
# head before any check (128 header lines of 8 KiB), and room for long instructions.
MAX_SECRET_BODY = 1024 * 1024
# Each connection's events: a microphone streams 10 to 50 appends a second (10-20 ms
# chunks) and a client sends other events beside them, so the bucket must let a live voice
# through for good while a flood is still cut: a burst of 240, then 120 a second.
BURST, RATE = 240.0, 120.0


class RealtimeLesson(Lesson):
    """Realtime sessions at :data:`PATHS`, answered by ``responder``.

    ``delay``: seconds between deltas. ``burst`` and ``rate``: each connection's events
    (a burst, then per second); ``strikes`` refused events in a row close it with 4029.
    ``max_size``: the largest event its routes take, in bytes (the service's 15 MiB).
    ``clock``: epoch seconds, by which ephemeral keys expire (``time.time``).
    """

    name = "realtime"
    pages = (Page("realtime", "Realtime", "realtime.js"), Page("voice", "Voice", "voice.js"))
    order = 40  # its place among the installed lessons: lower comes first
    subprotocols = (SUBPROTOCOL,)

    def __init__(
        self,
        responder: Responder = local_model,
        *,
        delay: float = 0.05,
        model: str = "workshop-local",
        burst: float = BURST,
        rate: float = RATE,
        strikes: int = 50,
        threads: int = 16,
        max_size: int = MAX_EVENT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.responder = responder
        self.max_size = max_size
        self.delay = delay
        self.model = model
        self.burst, self.rate, self.strikes = burst, rate, strikes
        self.threads = threads
        self.counts = Counts()
        self.keys = KeyStore(clock)
        self._executor: ThreadPoolExecutor | None = None

    # -- the plug-in ----------------------------------------------------------------------------

    def websocket_routes(self) -> Mapping[str, Handler]:
        return dict.fromkeys(PATHS, self.handler)

    def http_routes(self) -> Mapping[str, JsonRoute | Post]:
        sdk = Post(self._client_secrets, max_body=MAX_SECRET_BODY)
        return {BROWSER_SECRET: Post(self._browser_secret), **dict.fromkeys(CLIENT_SECRETS, sdk)}

    def owns_key(self, key: str) -> bool:
        return is_ephemeral(key)

    def check_key(self, key: str) -> str | None:
        if self.keys.check(key) is not None:
            return None
        return (
            "This ephemeral key has expired or was never issued here: mint a new one "
            f"(POST {BROWSER_SECRET}, or client.realtime.client_secrets.create()) and "
            "connect with it.\n"
        )

    def mint(self, settings: Event | None = None, seconds: int = DEFAULT_TTL) -> EphemeralKey:
        """A new ephemeral key living ``seconds``, whose sessions start with ``settings``
        (checked ``session.update`` settings; raises :class:`RealtimeError` if they do not
        make a valid session)."""
        settings = settings or {}
        session = updated(default_session(settings.get("model") or self.model), settings)
        return self.keys.mint(session, settings, seconds)

    def _browser_secret(self, body: bytes) -> tuple[int, object]:
        # The server's token authorized this request (the core checks it as for any of a
        # lesson's routes); the page gets a key that opens Realtime sessions only, briefly.
        return 200, self.mint().response()

    def _client_secrets(self, body: bytes) -> tuple[int, object]:
        """The service's ``POST /v1/realtime/client_secrets``: ``expires_after`` and
        ``session`` checked as ``session.update`` is (a bad field: 400 naming it)."""
        try:
            try:
                request = json.loads(body) if body.strip() else {}
            except (ValueError, RecursionError):
                raise RealtimeError(
                    "The request body is not valid JSON.", code="invalid_json"
                ) from None
            seconds, settings = check_request(request)
            return 200, self.mint(settings, seconds).response()
        except RealtimeError as error:
            return 400, {
                "error": {
                    "message": error.message,
                    "type": error.type,
                    "code": error.code,
                    "param": error.param,
                }
            }

    def credential(self, request: Request) -> str | None:
        """Azure's ``api-key`` header, or a browser's key subprotocol (Bearer: the core's)."""
        keys = request.headers.get_all("api-key")
        if keys:
            return keys[0] if len(keys) == 1 else ""  # two keys: no key matches
        for value in request.headers.get_all("Sec-WebSocket-Protocol"):
            for offered in value.split(","):
                offered = offered.strip()
                if offered.startswith(KEY_SUBPROTOCOL):
                    return offered.removeprefix(KEY_SUBPROTOCOL)
        return None

    async def start(self) -> None:
        # Responders' own threads: a slow one queues here, not on asyncio's default pool
        # that the rest of the server (and a learner's to_thread) shares.
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="responder")

    async def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def stats(self) -> dict[str, object]:
        stats: dict[str, object] = asdict(self.counts) if self.counts.sessions_total else {}
        if self.keys.minted:
            stats["keys_minted"] = self.keys.minted
        return stats

    # -- a connection ---------------------------------------------------------------------------

    async def handler(self, websocket: ServerConnection) -> None:
        """One Realtime session for as long as the client stays."""
        if self._executor is None:  # a lesson used without start(): make its pool now
            await self.start()
        assert self._executor is not None
        bucket = TokenBucket(self.burst, self.rate)
        strikes = 0

        writer = EventWriter(websocket)
        send = writer.send

        def rate_limits() -> list[Event]:
            remaining = max(0, int(bucket.tokens))
            reset = (self.burst - bucket.tokens) / self.rate if self.rate else 0.0
            return [
                {
                    "name": "requests",
                    "limit": int(self.burst),
                    "remaining": remaining,
                    "reset_seconds": round(max(0.0, reset), 3),
                }
            ]

        session = RealtimeSession(
            send,
            self.responder,
            self._executor,
            self.counts,
            model=_model(websocket.request) or self.model,
            delay=self.delay,
            rate_limits=rate_limits,
            flush=writer.flush,
        )
        key = self._key(websocket.request)
        if key is not None:  # its handshake was let through while the key was valid
            session.apply(key.settings)
        self.counts.sessions += 1
        self.counts.sessions_total += 1
        try:
            await session.open()
            async for message in websocket:
                if not bucket.take(time.monotonic()):
                    strikes += 1
                    self.counts.errors += 1
                    error = RealtimeError(
                        f"Rate limit reached: at most {self.rate:g} events a second "
                        f"(bursts of {self.burst:g}). Slow down; this event was dropped.",
                        code="rate_limit_exceeded",
                        type="rate_limit_error",
                    )
                    if strikes >= self.strikes:
                        writer.flush()  # what was said before the close goes first
                        # The API's error event with "close": 4029 added (the SDK keeps
                        # fields it does not know): a proxy may not pass the close code on.
                        await close_with(
                            websocket, Close.RATE_LIMITED, "too many events", event=error.event()
                        )
                        return
                    await send(error.event())
                    continue
                strikes = 0
                await session.handle(message)
        finally:
            self.counts.sessions -= 1
            await session.close()
            writer.flush()

    def _key(self, request: Request | None) -> EphemeralKey | None:
        """The ephemeral key this connection opened with, if it used one."""
        if request is None:
            return None
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        value = given.strip() if scheme.lower() == "bearer" else self.credential(request)
        return self.keys.find(value) if value and is_ephemeral(value) else None


def _model(request: Request | None) -> str | None:
    """The model (or Azure deployment) the client asked for in the URL."""
    if request is None:
        return None
    query = parse_qs(urlsplit(request.path).query)
    for key in ("model", "deployment"):
        if query.get(key):
            return query[key][0][:100]
    return None
