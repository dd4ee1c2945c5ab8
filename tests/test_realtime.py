"""Lesson 05's server, driven by the official openai SDK (OpenAI and Azure clients) and by
plain websockets clients: the event sequence, cancel, errors, keys, audio, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import urllib.request

import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.sdk_events import (
    NO_PROXY,
    SERVER_EVENT,
    TIMEOUT,
    ask_for_text,
    recv,
    strict,
    until,
    user_item,
)
from workshop_lib import start_server
from workshop_lib.realtime.client import text_session
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.server import RealtimeLesson

RESPONSE_SEQUENCE = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    # several response.output_text.delta here
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "rate_limits.updated",
]


def openai_client(server, key: str = "anything", path: str = "/v1") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, websocket_base_url=server.links.ws(path))


async def converse(connection, text: str) -> list[dict]:
    await connection.conversation.item.create(item=user_item(text))
    await connection.response.create()
    return await until(connection, "rate_limits.updated")


def without_deltas(events: list[dict]) -> list[str]:
    return [e["type"] for e in events if e["type"] != "response.output_text.delta"]


def test_the_openai_sdk_gets_the_whole_sequence_and_the_deltas_make_the_text(realtime) -> None:
    async def main() -> None:
        client = openai_client(realtime)
        async with client.realtime.connect(
            model="workshop-local", websocket_connection_options=NO_PROXY
        ) as connection:
            created = await recv(connection)
            assert created["type"] == "session.created"
            assert created["session"]["model"] == "workshop-local"
            # A text client asks for text: the service (and this server) answers in audio.
            await connection.session.update(
                session={"type": "realtime", "instructions": "Hi", "output_modalities": ["text"]}
            )
            updated = await recv(connection)
            assert updated["type"] == "session.updated"
            assert updated["session"]["instructions"] == "Hi"
            assert updated["session"]["output_modalities"] == ["text"]
            events = await converse(connection, "hello there world")

        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["conversation.item.added", "conversation.item.done"]
        assert without_deltas(events[2:]) == RESPONSE_SEQUENCE
        deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        assert len(deltas) > 3  # streamed in pieces, not in one message
        expected = "".join(echo_responder("hello there world"))
        done = next(e for e in events if e["type"] == "response.output_text.done")
        assert "".join(deltas) == done["text"] == expected
        final = events[-2]["response"]
        assert final["status"] == "completed"
        assert final["output"][0]["content"][0]["text"] == expected
        assert final["usage"]["input_tokens"] == 3
        # One response, one item: every event of it names them, and every event has its id.
        response_id = events[2]["response"]["id"]
        item_id = events[3]["item"]["id"]
        assert {e["response_id"] for e in events if "response_id" in e} == {response_id}
        assert {e["item_id"] for e in events if "item_id" in e} == {item_id}
        ids = [e["event_id"] for e in [created, updated, *events]]
        assert len(set(ids)) == len(ids)

    asyncio.run(main())


@pytest.mark.parametrize("form", ["azure", "azure-v1"])
def test_the_azure_forms_connect_with_an_api_key(form) -> None:
    token = "azure-key-for-tests"
    with start_server(port=0, token=token, lessons=[RealtimeLesson(delay=0)]) as server:

        async def main() -> list[dict]:
            if form == "azure":
                client = AsyncAzureOpenAI(
                    api_key=token,
                    api_version="2025-08-28",
                    azure_endpoint=server.http_url,
                    azure_deployment="my-deployment",
                    websocket_base_url=server.links.ws("/openai"),
                )
            else:
                client = openai_client(server, key=token, path="/openai/v1")
            async with client.realtime.connect(
                model="gpt-realtime", websocket_connection_options=NO_PROXY
            ) as connection:
                first = await recv(connection)
                return [first, *await converse(connection, "one two")]

        events = asyncio.run(main())
    assert events[0]["session"]["model"] == ("my-deployment" if form == "azure" else "gpt-realtime")
    assert events[-2]["response"]["status"] == "completed"
    assert server.app.clients == {} or sum(server.app.clients.values()) == 0


@pytest.mark.parametrize("client_kind", ["openai", "azure"])
def test_a_wrong_key_is_refused_on_a_server_with_a_token(client_kind) -> None:
    with start_server(port=0, token="the-right-one", lessons=[RealtimeLesson()]) as server:
        if client_kind == "openai":
            client = openai_client(server, key="a-wrong-one")
        else:
            client = AsyncAzureOpenAI(
                api_key="a-wrong-one",
                api_version="2025-08-28",
                azure_endpoint=server.http_url,
                websocket_base_url=server.links.ws("/openai"),
            )

        async def main() -> None:
            async with client.realtime.connect(
                model="m", websocket_connection_options=NO_PROXY
            ) as connection:
                await connection.recv()

        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(main())
    assert refused.value.response.status_code == 401


def test_a_browser_logs_in_with_the_subprotocols() -> None:
    token = "subprotocol-token"
    with start_server(port=0, token=token, lessons=[RealtimeLesson()]) as server:
        url = server.links.ws("/v1/realtime") + "?model=workshop-local"
        origin = {"Origin": server.http_url}

        async def main() -> tuple[str | None, str]:
            async with connect(
                url,
                subprotocols=["realtime", f"openai-insecure-api-key.{token}"],
                additional_headers=origin,
                proxy=None,
            ) as websocket:
                first = json.loads(await asyncio.wait_for(websocket.recv(), TIMEOUT))
                return websocket.subprotocol, first["type"]

        assert asyncio.run(main()) == ("realtime", "session.created")

        async def wrong() -> None:
            async with connect(
                url,
                subprotocols=["realtime", "openai-insecure-api-key.wrong"],
                additional_headers=origin,
                proxy=None,
            ):
                pass

        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(wrong())
        assert refused.value.response.status_code == 401


def test_any_key_works_on_a_local_server_without_a_token(realtime) -> None:
    async def main() -> str:
        async with connect(
            realtime.links.ws("/v1/realtime"),
            subprotocols=["realtime", "openai-insecure-api-key.whatever"],
            additional_headers={"Origin": realtime.http_url},
            proxy=None,
        ) as websocket:
            return json.loads(await websocket.recv())["type"]

    assert asyncio.run(main()) == "session.created"


def test_cancel_mid_stream_ends_the_response_as_cancelled() -> None:
    words = " ".join(f"w{i}" for i in range(200))
    with start_server(port=0, lessons=[RealtimeLesson(delay=0.02)]) as server:

        async def main() -> list[dict]:
            async with openai_client(server).realtime.connect(
                model="m", websocket_connection_options=NO_PROXY
            ) as connection:
                await ask_for_text(connection)
                await connection.conversation.item.create(item=user_item(words))
                await connection.response.create()
                seen = await until(connection, "response.output_text.delta")
                response_id = next(e for e in seen if e["type"] == "response.created")["response"][
                    "id"
                ]
                await connection.response.cancel(response_id=response_id, event_id="stop-it")
                return seen + await until(connection, "rate_limits.updated")

        events = asyncio.run(main())
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    done = events[-2]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert len(deltas) < 200  # stopped well before the end
    text = next(e for e in events if e["type"] == "response.output_text.done")["text"]
    assert text == "".join(deltas) == done["output"][0]["content"][0]["text"]
    assert without_deltas(events)[-len(RESPONSE_SEQUENCE) :] == RESPONSE_SEQUENCE


async def raw_session(server, *, text: bool = True):
    """A plain websockets client on /v1/realtime, past its session.created; with ``text``,
    its session asks for answers in text (past session.updated), as a text client must."""
    websocket = await connect(server.links.ws("/v1/realtime"), proxy=None)
    assert json.loads(await websocket.recv())["type"] == "session.created"
    if text:
        await websocket.send(json.dumps(text_session()))
        updated = strict(await asyncio.wait_for(websocket.recv(), TIMEOUT))
        assert updated["session"]["output_modalities"] == ["text"], updated
    return websocket


async def exchange(websocket, message: str | bytes) -> dict:
    await websocket.send(message)
    return json.loads(await asyncio.wait_for(websocket.recv(), TIMEOUT))


BAD_EVENTS = [
    (b"\x00\x01", "invalid_event", None),
    ("not json", "invalid_json", None),
    ("[" * 5000 + "]" * 5000, "invalid_json", None),
    ("[1, 2]", "invalid_event", None),
    ('{"event_id": "e1"}', "missing_required_parameter", "type"),
    ('{"type": "response.text.delta", "event_id": "e2"}', "invalid_value", "type"),
    ('{"type": "session.update", "event_id": "e3"}', "missing_required_parameter", "session"),
    (
        '{"type": "session.update", "session": {"voice": 1}, "event_id": "e4"}',
        "unknown_parameter",
        "session.voice",
    ),
    (
        '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
        '"content": [{"type": "input_text", "text": 5}]}, "event_id": "e5"}',
        "invalid_type",
        "item.content[0].text",
    ),
    (
        '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
        '"content": [{"type": "input_text", "text": "\\ud800"}]}, "event_id": "e6"}',
        "invalid_value",
        "item.content[0].text",
    ),
    (
        '{"type": "response.create", "response": {"output_modalities": []}, "event_id": "e7"}',
        "invalid_value",
        "response.output_modalities",
    ),
    (
        '{"type": "input_audio_buffer.append", "audio": "@@@", "event_id": "e8"}',
        "invalid_value",
        "audio",
    ),
    (
        '{"type": "input_audio_buffer.commit", "event_id": "e9"}',
        "input_audio_buffer_commit_empty",
        None,
    ),
    ('{"type": "response.cancel", "event_id": "e10"}', "response_cancel_not_active", None),
]


def test_bad_events_get_an_error_naming_their_event_id_and_the_session_stays(
    realtime, caplog
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> list[tuple[dict, dict]]:
        websocket = await raw_session(realtime)
        answers = []
        for message, _, _ in BAD_EVENTS:
            answers.append(await exchange(websocket, message))
        # Still open and still answering.
        await websocket.send(
            json.dumps({"type": "conversation.item.create", "item": user_item("ok")})
        )
        await websocket.send(json.dumps({"type": "response.create"}))
        while (event := json.loads(await websocket.recv()))["type"] != "response.done":
            pass
        await websocket.close()
        return answers, event

    answers, done = asyncio.run(main())
    for (message, code, param), answer in zip(BAD_EVENTS, answers, strict=True):
        SERVER_EVENT.validate_python(answer)
        assert answer["type"] == "error", message
        assert answer["error"]["code"] == code, (message, answer)
        assert answer["error"]["param"] == param, (message, answer)
        sent = json.loads(message) if isinstance(message, str) and message.startswith("{") else {}
        assert answer["error"]["event_id"] == sent.get("event_id"), message
    assert done["response"]["status"] == "completed"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_second_response_while_one_streams_is_an_error() -> None:
    with start_server(port=0, lessons=[RealtimeLesson(delay=0.05)]) as server:

        async def main() -> dict:
            websocket = await raw_session(server)
            await websocket.send(
                json.dumps({"type": "conversation.item.create", "item": user_item("a b c d e")})
            )
            await websocket.send(json.dumps({"type": "response.create"}))
            await websocket.send(json.dumps({"type": "response.create", "event_id": "again"}))
            while (event := json.loads(await websocket.recv()))["type"] != "error":
                pass
            await websocket.close()
            return event

        error = asyncio.run(main())
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert error["error"]["event_id"] == "again"


def test_committed_audio_becomes_an_item_without_an_invented_transcript(realtime) -> None:
    second = bytes(48_000)  # one second of 24 kHz 16-bit mono silence

    async def main() -> list[dict]:
        websocket = await raw_session(realtime)
        for half in (second[:24_000], second[24_000:]):
            await websocket.send(
                json.dumps(
                    {
                        "type": "input_audio_buffer.append",
                        "audio": base64.b64encode(half).decode(),
                    }
                )
            )
        await websocket.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = [json.loads(await websocket.recv()) for _ in range(3)]
        await websocket.send(json.dumps({"type": "response.create"}))
        while events[-1]["type"] != "response.done":
            events.append(json.loads(await websocket.recv()))
        answer = events[-1]
        events = events[:3]
        assert json.loads(await websocket.recv())["type"] == "rate_limits.updated"
        await websocket.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA"}))
        events.append(await exchange(websocket, json.dumps({"type": "input_audio_buffer.clear"})))
        events.append(await exchange(websocket, json.dumps({"type": "input_audio_buffer.commit"})))
        await websocket.close()
        return [*events, answer]

    committed, added, done, cleared, empty, answer = asyncio.run(main())
    for event in (committed, added, done, cleared, empty, answer):
        SERVER_EVENT.validate_python(event)
    assert committed["type"] == "input_audio_buffer.committed"
    assert added["type"] == "conversation.item.added"
    assert added["item"]["id"] == committed["item_id"]
    # Nothing here recognizes speech: no transcript, and the model says what it got.
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    text = answer["response"]["output"][0]["content"][0]["text"]
    assert text == "I heard 1.0 seconds of speech."
    assert cleared["type"] == "input_audio_buffer.cleared"
    assert empty["error"]["code"] == "input_audio_buffer_commit_empty"


def test_a_slow_responder_holds_up_no_other_session() -> None:
    release = threading.Event()

    def responder(text: str):
        if text == "slow":
            release.wait(TIMEOUT)  # blocks its thread, as time.sleep or a real model would
        yield f"answer to {text}"

    with start_server(port=0, lessons=[RealtimeLesson(responder, delay=0)]) as server:

        async def main() -> tuple[str, bool]:
            slow, quick = await raw_session(server), await raw_session(server)
            for websocket, text in ((slow, "slow"), (quick, "quick")):
                await websocket.send(
                    json.dumps({"type": "conversation.item.create", "item": user_item(text)})
                )
                await websocket.send(json.dumps({"type": "response.create"}))
            while (event := json.loads(await quick.recv()))["type"] != "response.done":
                pass
            still_waiting = not release.is_set()
            release.set()
            while json.loads(await slow.recv())["type"] != "response.done":
                pass
            await slow.close()
            await quick.close()
            return event["response"]["output"][0]["content"][0]["text"], still_waiting

        text, slow_was_waiting = asyncio.run(main())
    assert text == "answer to quick" and slow_was_waiting


def test_a_failing_responder_fails_the_response_not_the_session() -> None:
    def responder(text: str):
        yield "half "
        raise ValueError("my model broke")

    with start_server(port=0, lessons=[RealtimeLesson(responder, delay=0)]) as server:

        async def main() -> list[dict]:
            websocket = await raw_session(server)
            dones = []
            for _ in range(2):  # twice: the session survives the first failure
                await websocket.send(
                    json.dumps({"type": "conversation.item.create", "item": user_item("x")})
                )
                await websocket.send(json.dumps({"type": "response.create"}))
                while (event := json.loads(await websocket.recv()))["type"] != "response.done":
                    pass
                dones.append(event)
            await websocket.close()
            return dones

        dones = asyncio.run(main())
    for done in dones:
        assert done["response"]["status"] == "failed"
        assert (
            "ValueError: my model broke" in done["response"]["status_details"]["error"]["message"]
        )
        assert done["response"]["output"][0]["content"][0]["text"] == "half "


def test_a_flood_gets_errors_in_band_then_4029() -> None:
    with start_server(port=0, lessons=[RealtimeLesson(burst=3, rate=0.01, strikes=5)]) as server:

        async def main() -> tuple[list[dict], int | None]:
            websocket = await raw_session(server, text=False)  # the burst is for the flood
            for _ in range(20):
                try:
                    await websocket.send(json.dumps({"type": "input_audio_buffer.clear"}))
                except ConnectionClosed:
                    break
            events = []
            try:
                async for message in websocket:
                    events.append(json.loads(message))
            except ConnectionClosed:
                pass
            return events, websocket.close_code

        events, code = asyncio.run(main())
    limited = [e for e in events if e["type"] == "error"]
    assert [e["type"] for e in events[:3]] == ["input_audio_buffer.cleared"] * 3
    assert len(limited) == 5 and limited[0]["error"]["code"] == "rate_limit_exceeded"
    # The last one says the connection ends, and with which code: a proxy may drop it.
    assert [e.get("close") for e in limited] == [None] * 4 + [4029]
    assert code == 4029


def test_stats_count_sessions_responses_and_deltas(realtime) -> None:
    def stats() -> dict:
        with urllib.request.urlopen(realtime.links.url("/api/stats"), timeout=TIMEOUT) as answer:
            return json.load(answer)

    assert "realtime" not in stats()  # nothing to show before the first session

    async def main() -> None:
        websocket = await raw_session(realtime)
        await websocket.send(
            json.dumps({"type": "conversation.item.create", "item": user_item("a b")})
        )
        await websocket.send(json.dumps({"type": "response.create"}))
        while json.loads(await websocket.recv())["type"] != "rate_limits.updated":
            pass
        assert stats()["realtime"]["sessions"] == 1
        await websocket.close()

    asyncio.run(main())
    counts = stats()["realtime"]
    deltas = len(list(echo_responder("a b")))
    assert counts == {
        "sessions": 0,
        "sessions_total": 1,
        "responses": 1,
        "spoken": 0,  # answered in text
        "deltas": deltas,
        "calls": 0,
        "cancelled": 0,
        "failed": 0,
        "errors": 0,
    }


def test_a_notebook_in_the_room_talks_to_the_rooms_realtime_server(in_the_room) -> None:
    """join_room_server() joins the room's server; the SDK logs in with its token."""
    from workshop_lib.realtime.client import LOCAL, openai_client
    from workshop_lib.server.room import join_room_server

    shared = join_room_server()
    assert shared is not None
    assert shared.token == in_the_room.token and shared.port == in_the_room.port

    async def main() -> str:
        async with openai_client(shared).realtime.connect(model="m", **LOCAL) as connection:
            await ask_for_text(connection)
            await connection.conversation.item.create(item=user_item("in the room"))
            await connection.response.create()
            async for event in connection:
                if event.type == "response.done":
                    return event.response.output[0].content[0].text
        raise AssertionError("no response.done")

    assert asyncio.run(main()) == "".join(echo_responder("in the room"))
    assert in_the_room.lesson("realtime").counts.responses == 1


def test_an_event_over_the_size_limit_closes_with_1009() -> None:
    async def main(server) -> int | None:
        websocket = await raw_session(server)
        big = base64.b64encode(bytes(60_000)).decode()  # 80 KB of base64: over 64 KiB
        await websocket.send(json.dumps({"type": "input_audio_buffer.append", "audio": big}))
        # Said in band first, with the API's error object too, which the SDK reads.
        refusal = json.loads(await asyncio.wait_for(websocket.recv(), TIMEOUT))
        assert refusal["close"] == 1009 and refusal["error"]["code"] == "message_too_big"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(websocket.recv(), TIMEOUT)
        return websocket.close_code

    # The lesson's own limit (the service's 15 MiB by default), here the course's 64 KiB.
    with start_server(port=0, lessons=[RealtimeLesson(delay=0, max_size=64 * 1024)]) as server:
        assert asyncio.run(main(server)) == 1009


def test_the_event_log_groups_events_and_assembles_the_text() -> None:
    from workshop_lib.realtime.widgets import EventLog

    log = EventLog()
    log.sent({"type": "response.create", "event_id": "mine"})
    log.add({"type": "response.created", "event_id": "e1", "response": {"id": "resp_1"}})
    for piece in ("Hel", "lo <b>"):
        log.add(
            {
                "type": "response.output_text.delta",
                "event_id": "e",
                "response_id": "resp_1",
                "item_id": "item_1",
                "delta": piece,
            }
        )
    log.add(
        {
            "type": "response.done",
            "event_id": "e2",
            "response": {"id": "resp_1", "status": "completed"},
        }
    )
    assert log.text() == log.text("resp_1") == "Hello <b>"
    answers = log.children[0].value
    assert "resp_1" in answers and "completed" in answers
    assert "Hello &lt;b&gt;" in answers and "lo <b>" not in answers  # text, never markup
    lines = log.children[1].value
    assert lines.count("data-type='response.output_text.delta'") == 2
    assert "padding-left:3.0em" in lines  # a delta sits under its response
    log.clear()
    assert log.text() == "" and "no events yet" in log.children[1].value
