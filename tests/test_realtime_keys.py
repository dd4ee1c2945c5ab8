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
import uuid
from collections.abc import Iterator

import pytest
from openai.types.realtime.client_secret_create_response import ClientSecretCreateResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.sdk_events import TIMEOUT, strict
from workshop_lib import start_server
from workshop_lib.course import default_lessons
from workshop_lib.logs import WEBSOCKETS_LOGGER_NAME
from workshop_lib.realtime.keys import DEFAULT_TTL
from workshop_lib.realtime.server import BROWSER_SECRET
from workshop_lib.server import WorkshopServer

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
