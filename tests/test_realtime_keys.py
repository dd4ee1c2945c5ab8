"""Ephemeral keys on the local Realtime server: minted by a back-end route (the browser's, an
empty POST) or by the official SDK (``client.realtime.client_secrets.create``), opening
Realtime sessions with their settings until they expire, and nothing else.

Real servers on port 0, real clients; every server event parsed by the SDK's own types,
strictly (tests/sdk_events.py); expiry judged on an injected clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import logging
import socket
import uuid
from collections.abc import Iterator

import pytest
from openai.types.realtime.client_secret_create_response import ClientSecretCreateResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.sdk_events import NO_PROXY, TIMEOUT, recv, strict
from workshop_lib import start_server
from workshop_lib.app import bodies
from workshop_lib.app.auth import RedactFilter
from workshop_lib.course import default_lessons
from workshop_lib.realtime.client import azure_client, openai_client
from workshop_lib.realtime.keys import DEFAULT_TTL, PRUNE_AFTER, KeyStore
from workshop_lib.realtime.server import BROWSER_SECRET, MAX_SECRET_BODY
from workshop_lib.server.logs import WEBSOCKETS_LOGGER_NAME
from workshop_lib.server.start import WorkshopServer

TOKEN = "keys-test-token-" + uuid.uuid4().hex[:8]
START = 1_900_000_000.0  # the injected clock's epoch seconds at the start of each test


def synchronous(test):
    """Run an ``async def`` test on a loop of its own (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _server(clock: Clock, token: str | None) -> WorkshopServer:
    return start_server(
        port=0,
        name=f"keys-{uuid.uuid4().hex[:8]}",
        token=token,
        lessons=default_lessons(realtime={"clock": clock, "delay": 0}),
    )


@pytest.fixture(params=["token", "open"])
def any_server(request, clock) -> Iterator[WorkshopServer]:
    """A server with a token, then one without: keys work the same on both."""
    with _server(clock, TOKEN if request.param == "token" else None) as server:
        yield server


@pytest.fixture
def guarded(clock) -> Iterator[WorkshopServer]:
    with _server(clock, TOKEN) as server:
        yield server


def post(
    server: WorkshopServer, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """A plain POST, its status, headers and body."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        connection.request("POST", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def mint(server: WorkshopServer) -> dict:
    """A key from the browser's route, authorized as the page's back end would be."""
    status, headers, body = post(server, BROWSER_SECRET, server.auth_headers)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


async def first_event(server: WorkshopServer, path: str = "/v1/realtime", **kwargs) -> dict:
    """The first event a plain WebSocket client gets on ``path``, strictly parsed."""
    async with connect(server.links.ws(path), proxy=None, **kwargs) as websocket:
        return strict(await asyncio.wait_for(websocket.recv(), TIMEOUT))


def browser_protocols(key: str) -> list[str]:
    """What a browser offers: it cannot set headers, so the key rides in a subprotocol."""
    return ["realtime", f"openai-insecure-api-key.{key}"]


async def refused(server: WorkshopServer, path: str, **kwargs) -> tuple[int, str]:
    """The HTTP status and body of a refused handshake."""
    with pytest.raises(InvalidStatus) as caught:
        await first_event(server, path, **kwargs)
    response = caught.value.response
    return response.status_code, response.body.decode()


# -- the browser's route --------------------------------------------------------------------------


def test_the_browser_route_mints_a_key_in_the_services_shape(any_server, clock):
    answer = mint(any_server)
    parsed = ClientSecretCreateResponse.model_validate(answer, strict=True)
    assert parsed.value.startswith("ek_") and len(parsed.value) > 30
    assert parsed.expires_at == int(START) + DEFAULT_TTL
    assert parsed.session.type == "realtime" and parsed.session.model == "workshop-local"
    assert parsed.session.id.startswith("sess_")
    # Two calls, two keys.
    assert mint(any_server)["value"] != parsed.value


def test_the_browser_route_never_hands_out_the_token(guarded):
    status, _, body = post(guarded, BROWSER_SECRET, guarded.auth_headers)
    assert status == 200 and TOKEN.encode() not in body


def test_the_browser_route_wants_the_token_on_a_token_server(guarded):
    status, headers, body = post(guarded, BROWSER_SECRET)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer", body
    assert b"Authorization: Bearer <token>" in body
    assert post(guarded, BROWSER_SECRET, {"Authorization": "Bearer wrong"})[0] == 401
    # A key cannot mint keys: only the token (the service's API key) can.
    key = mint(guarded)["value"]
    status, _, body = post(guarded, BROWSER_SECRET, {"Authorization": f"Bearer {key}"})
    assert status == 401 and b"needs the server's token" in body, body


def test_the_browser_route_is_a_post(any_server):
    connection = http.client.HTTPConnection(any_server.host, any_server.port, timeout=TIMEOUT)
    try:
        connection.request("GET", BROWSER_SECRET, headers=any_server.auth_headers)
        response = connection.getresponse()
        assert response.status == 405 and response.headers["Allow"] == "POST"
        assert b"POST" in response.read()
    finally:
        connection.close()


def test_a_post_anywhere_else_is_still_405(any_server):
    status, headers, _ = post(any_server, "/api/stats", any_server.auth_headers)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


# -- the key opens sessions -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/realtime", "/openai/realtime", "/openai/v1/realtime"])
@synchronous
async def test_a_minted_key_opens_a_session_through_the_browsers_subprotocol(any_server, path):
    key = mint(any_server)["value"]
    async with connect(
        any_server.links.ws(path), subprotocols=browser_protocols(key), proxy=None
    ) as websocket:
        assert websocket.subprotocol == "realtime"
        event = strict(await asyncio.wait_for(websocket.recv(), TIMEOUT))
    assert event["type"] == "session.created"


@pytest.mark.parametrize(
    "header", [lambda key: {"Authorization": f"Bearer {key}"}, lambda key: {"api-key": key}]
)
@synchronous
async def test_a_minted_key_opens_a_session_in_a_header(any_server, header):
    key = mint(any_server)["value"]
    event = await first_event(any_server, additional_headers=header(key))
    assert event["type"] == "session.created"


@synchronous
async def test_a_key_opens_sessions_until_it_expires_and_then_is_refused(any_server, clock):
    key = mint(any_server)["value"]
    clock.now = START + DEFAULT_TTL - 1
    assert (await first_event(any_server, subprotocols=browser_protocols(key)))["type"] == (
        "session.created"
    )
    clock.now = START + DEFAULT_TTL
    status, body = await refused(any_server, "/v1/realtime", subprotocols=browser_protocols(key))
    assert status == 401 and "expired" in body and "mint a new one" in body, body
    assert body.count("\n") == 1 and key not in body
    status, _ = await refused(
        any_server, "/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"}
    )
    assert status == 401


@pytest.mark.parametrize("key", ["ek_made-up-by-a-learner", "ek_", "ek_" + "x" * 200])
@synchronous
async def test_a_made_up_key_is_refused(any_server, key):
    headers = {"api-key": key}
    status, body = await refused(any_server, "/v1/realtime", additional_headers=headers)
    assert status == 401 and "mint a new one" in body, body


@pytest.mark.parametrize("path", ["/echo", "/chat"])
@synchronous
async def test_a_key_opens_no_other_lessons_route(any_server, path):
    key = mint(any_server)["value"]
    for kwargs in (
        {"additional_headers": {"Authorization": f"Bearer {key}"}},
        {"subprotocols": browser_protocols(key)},  # read by no lesson but Realtime: see below
    ):
        if "subprotocols" in kwargs and any_server.token is None:
            continue  # an open server asks /echo for no key, and Realtime's is not read there
        status, body = await refused(any_server, path, **kwargs)
        assert status == 401, (path, kwargs, body)
        if "additional_headers" in kwargs:
            assert "realtime lesson's routes only" in body, body


def test_a_key_reads_no_lessons_http_data(any_server):
    key = mint(any_server)["value"]
    connection = http.client.HTTPConnection(any_server.host, any_server.port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/api/ball", headers={"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        assert response.status == 401, response.read()
    finally:
        connection.close()


@synchronous
async def test_the_token_still_opens_sessions_beside_keys(guarded):
    mint(guarded)
    event = await first_event(guarded, additional_headers=guarded.auth_headers)
    assert event["type"] == "session.created"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@synchronous
async def test_neither_the_token_nor_a_key_reaches_the_log(guarded):
    handler = _Lines()
    loggers = [logging.getLogger(WEBSOCKETS_LOGGER_NAME), logging.getLogger("workshop_lib")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)  # websockets: the handshake's headers, every frame
        logger.addHandler(handler)
    try:
        key = mint(guarded)["value"]
        await first_event(guarded, subprotocols=browser_protocols(key))
        await first_event(guarded, additional_headers={"Authorization": f"Bearer {key}"})
        await refused(guarded, "/v1/realtime", additional_headers={"api-key": "ek_madeup123"})
        await refused(guarded, "/echo", additional_headers={"Authorization": f"Bearer {key}"})
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
            logger.removeHandler(handler)
    text = "\n".join(handler.lines)
    assert "openai-insecure-api-key" in text and "refused" in text  # the log saw them...
    assert key not in text and key[3:] not in text and "ek_madeup123" not in text  # ...not them
    assert TOKEN not in text


# -- the SDK's client_secrets.create() ------------------------------------------------------------

SETTINGS = {
    "type": "realtime",
    "instructions": "Answer in one short sentence.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 700}},
        "output": {"voice": "marin"},
    },
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": "auto",
}


async def sdk_mint(client, **params) -> dict:
    """A key from the SDK, its raw JSON parsed strictly by the SDK's own response type."""
    raw = await client.realtime.client_secrets.with_raw_response.create(**params)
    answer = json.loads(raw.http_response.content)
    ClientSecretCreateResponse.model_validate(answer, strict=True)
    return answer


async def sdk_session(server: WorkshopServer, key: str, kind: str = "openai") -> dict:
    """The session an SDK client opening a session with ``key`` is greeted with."""
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    if kind == "openai":
        client = AsyncOpenAI(api_key=key, websocket_base_url=server.links.ws("/v1"))
    else:
        client = AsyncAzureOpenAI(
            api_key=key,
            api_version="2025-08-28",
            azure_endpoint=server.http_url,
            azure_deployment="workshop-local",
            websocket_base_url=server.links.ws("/openai"),
        )
    async with client.realtime.connect(
        model="workshop-local", websocket_connection_options=NO_PROXY
    ) as connection:
        event = await recv(connection)
        assert event["type"] == "session.created"
        return event["session"]


@pytest.mark.parametrize("kind", ["openai", "azure"])
@synchronous
async def test_the_sdk_mints_a_key_whose_sessions_start_with_its_settings(any_server, kind):
    client = openai_client(any_server) if kind == "openai" else azure_client(any_server)
    answer = await sdk_mint(
        client, session=SETTINGS, expires_after={"anchor": "created_at", "seconds": 120}
    )
    assert answer["value"].startswith("ek_") and answer["expires_at"] == int(START) + 120
    minted = answer["session"]
    assert minted["instructions"] == SETTINGS["instructions"]
    assert minted["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700
    assert minted["audio"]["output"]["voice"] == "marin"
    assert minted["audio"]["input"]["turn_detection"]["prefix_padding_ms"] == 300  # defaults
    assert minted["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

    session = await sdk_session(any_server, answer["value"], kind)
    assert session["id"] != minted["id"]  # a session of its own, with the key's settings
    shown = {k: v for k, v in minted.items() if k not in ("id", "expires_at")}
    assert {k: v for k, v in session.items() if k != "id"} == shown


@synchronous
async def test_each_session_of_a_key_starts_from_the_keys_settings(any_server):
    key = (await sdk_mint(openai_client(any_server), session=SETTINGS))["value"]
    protocols = browser_protocols(key)
    async with connect(
        any_server.links.ws("/v1/realtime"), subprotocols=protocols, proxy=None
    ) as websocket:
        strict(await asyncio.wait_for(websocket.recv(), TIMEOUT))
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}
        await websocket.send(json.dumps(update))
        updated = strict(await asyncio.wait_for(websocket.recv(), TIMEOUT))
        assert updated["session"]["instructions"] == "x"  # a client may still change them
    again = await first_event(any_server, subprotocols=protocols)
    assert again["session"]["instructions"] == SETTINGS["instructions"]


@synchronous
async def test_an_sdk_key_expires_after_its_seconds(any_server, clock):
    client = openai_client(any_server)
    key = (await sdk_mint(client, expires_after={"anchor": "created_at", "seconds": 10}))["value"]
    clock.now = START + 9.5
    assert (await sdk_session(any_server, key))["type"] == "realtime"
    clock.now = START + 10
    status, body = await refused(
        any_server, "/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"}
    )
    assert status == 401 and "mint a new one" in body


@synchronous
async def test_the_sdk_mints_with_the_defaults(any_server):
    answer = await sdk_mint(openai_client(any_server))
    assert answer["expires_at"] == int(START) + DEFAULT_TTL
    # The default session, the service's: audio out, server VAD on.
    assert answer["session"]["output_modalities"] == ["audio"]
    assert answer["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"


@synchronous
async def test_the_sdk_needs_the_token_to_mint_on_a_token_server(guarded):
    import openai

    client = openai_client(guarded)
    client.api_key = "wrong"
    with pytest.raises(openai.AuthenticationError):
        await client.realtime.client_secrets.create()
    client.api_key = (await sdk_mint(openai_client(guarded)))["value"]
    with pytest.raises(openai.AuthenticationError):  # a key mints no keys
        await client.realtime.client_secrets.create()


BAD_REQUESTS = [
    ({"expires_after": {"anchor": "created_at", "seconds": 9}}, "expires_after.seconds"),
    ({"expires_after": {"anchor": "created_at", "seconds": 7201}}, "expires_after.seconds"),
    ({"expires_after": {"anchor": "now", "seconds": 60}}, "expires_after.anchor"),
    ({"expires_after": {"anchor": "created_at", "seconds": "60"}}, "expires_after.seconds"),
    ({"expires_after": {"seconds": 60.5}}, "expires_after.seconds"),
    ({"session": {"type": "realtime", "tools": "x"}}, "session.tools"),
    ({"session": {"instructions": "no type"}}, "session.type"),
    ({"session": {"type": "transcription"}}, "session.type"),
    ({"session": {"type": "realtime", "modalities": ["text"]}}, "session.modalities"),
    (
        {"session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "x"}}}}},
        "session.audio.input.turn_detection.type",
    ),
    (
        {"session": {"type": "realtime", "tool_choice": {"type": "function", "name": "nope"}}},
        "session.tool_choice.name",
    ),
    ({"unknown": 1}, "unknown"),
]


@pytest.mark.parametrize(("request_body", "param"), BAD_REQUESTS)
def test_a_bad_request_gets_the_services_400(any_server, request_body, param):
    headers = {**any_server.auth_headers, "Content-Type": "application/json"}
    body = json.dumps(request_body).encode()
    status, _, answer = post(any_server, "/v1/realtime/client_secrets", headers, body)
    assert status == 400, answer
    error = json.loads(answer)["error"]
    assert set(error) == {"message", "type", "code", "param"}, error
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert error["message"] and error["code"], error


@synchronous
async def test_the_sdk_sees_a_bad_field_as_the_service_reports_it(any_server):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client(any_server).realtime.client_secrets.create(
            session={"type": "realtime", "max_output_tokens": 0}
        )
    assert caught.value.status_code == 400
    assert caught.value.param == "session.max_output_tokens"
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize("body", [b"{", b"[]", b'"x"', b"\xff\xfe", b"[" * 100_000])
def test_a_body_that_is_no_json_object_gets_a_400(any_server, body):
    status, _, answer = post(
        any_server, "/v1/realtime/client_secrets", any_server.auth_headers, body
    )
    assert status == 400, answer
    assert json.loads(answer)["error"]["type"] == "invalid_request_error"


def test_a_body_over_the_limit_is_refused_unread_with_413(any_server):
    big = b" " * (MAX_SECRET_BODY + 1)
    status, _, answer = post(
        any_server, "/v1/realtime/client_secrets", any_server.auth_headers, big
    )
    assert status == 413 and b"at most" in answer, answer
    # The browser's route takes no body at all.
    status, _, answer = post(any_server, BROWSER_SECRET, any_server.auth_headers, b"{}")
    assert status == 413, answer


def test_a_token_server_checks_the_token_before_it_answers_a_body(guarded):
    body = json.dumps({"session": {"type": "realtime"}}).encode()
    status, _, _ = post(guarded, "/v1/realtime/client_secrets", {}, body)
    assert status == 401
    status, _, _ = post(guarded, "/openai/realtime/client_secrets", {"api-key": "wrong"}, body)
    assert status == 401
    status, _, _ = post(guarded, "/openai/realtime/client_secrets", {"api-key": TOKEN}, body)
    assert status == 200


def test_the_body_reader_finds_the_internals_it_needs():
    assert bodies.missing_internals() == []
    assert bodies.AVAILABLE


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 2\r\nContent-Length: 2\r\n",  # two: a request smuggler's trick
        b"Content-Length: -1\r\n",
        b"Content-Length: 1e3\r\n",
    ],
)
def test_a_request_whose_length_cannot_be_trusted_is_dropped(any_server, head):
    with socket.create_connection((any_server.host, any_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}")
        assert sock.recv(1024) == b""  # no answer: the connection is closed, as websockets does
    assert mint(any_server)["value"].startswith("ek_")  # and the server goes on


def test_a_get_route_still_refuses_a_body_as_before(any_server):
    with socket.create_connection((any_server.host, any_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        assert sock.recv(1024) == b""


def test_a_foreign_page_cannot_have_its_visitor_mint_keys(any_server):
    foreign = {**any_server.auth_headers, "Origin": "https://evil.example"}
    status, _, body = post(any_server, BROWSER_SECRET, foreign)
    assert status == 403 and b"may not POST" in body, body
    own = {**any_server.auth_headers, "Origin": any_server.http_url}
    assert post(any_server, BROWSER_SECRET, own)[0] == 200


def test_the_log_filter_hides_a_key_wherever_it_shows():
    record = logging.LogRecord(
        "x", logging.INFO, "", 0, "got %s then %s", ("ek_abc-D_9", "x"), None
    )
    RedactFilter().filter(record)
    assert record.getMessage() == "got ek_[redacted] then x"
    record = logging.LogRecord("x", logging.INFO, "", 0, "a week_long stay", (), None)
    RedactFilter().filter(record)
    assert record.getMessage() == "a week_long stay"


def test_a_store_holds_a_bounded_number_of_keys_and_forgets_expired_ones(clock):
    store = KeyStore(clock, max_keys=3)
    keys = [store.mint({"type": "realtime"}, {}, 10) for _ in range(4)]
    assert len(store) == 3 and store.check(keys[0].value) is None  # the oldest went first
    assert all(store.check(key.value) is key for key in keys[1:])
    clock.now = START + 10 + PRUNE_AFTER
    store.mint({"type": "realtime"}, {}, 10)
    assert len(store) == 1
