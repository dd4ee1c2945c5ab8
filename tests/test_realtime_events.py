"""Properties of lesson 05's protocol: the event parser and a session fed any sequence.

Every server event is checked against the official SDK's own GA types, strictly.
"""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from pydantic import TypeAdapter

from workshop_lib.realtime.events import CLIENT_EVENTS, RealtimeError, parse_client_event
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.session import Counts, RealtimeSession

SERVER_EVENT = TypeAdapter(RealtimeServerEvent)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

# Events that look like the real thing, with random values where a client could get them wrong.
texts = st.text(max_size=40)
client_events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("conversation.item.create")},
        optional={
            "event_id": texts,
            "item": st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["message", "function_call"]),
                    "role": st.sampled_from(["user", "system", "assistant", "tool"]),
                    "content": st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(["input_text", "output_text", "text"]),
                                "text": texts | st.integers(),
                            }
                        ),
                        max_size=2,
                    ),
                }
            ),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("response.create")},
        optional={
            "event_id": texts,
            "response": st.fixed_dictionaries(
                {},
                optional={
                    "instructions": texts,
                    "output_modalities": st.sampled_from([["text"], ["audio"]]),
                    "max_output_tokens": st.sampled_from([1, 3, "inf", 0, True]),
                    "conversation": st.sampled_from(["auto", "none", "other"]),
                },
            ),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("response.cancel")}, optional={"event_id": texts, "response_id": texts}
    ),
    st.fixed_dictionaries(
        {"type": st.just("session.update")},
        optional={
            "event_id": texts,
            "session": st.fixed_dictionaries(
                {"type": st.just("realtime")},
                optional={"instructions": texts | st.integers(), "voice": texts},
            ),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("input_audio_buffer.append")},
        optional={
            "audio": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | texts
        },
    ),
    st.sampled_from([{"type": "input_audio_buffer.commit"}, {"type": "input_audio_buffer.clear"}]),
    json_values,
)


@given(st.text() | st.binary())
def test_any_message_parses_or_gets_a_valid_error(message) -> None:
    try:
        event = parse_client_event(message)
    except RealtimeError as error:
        SERVER_EVENT.validate_python(error.event())
    else:
        assert event["type"] in CLIENT_EVENTS


@given(client_events)
def test_an_error_names_the_clients_event_id(event) -> None:
    try:
        parsed = parse_client_event(json.dumps(event))
    except RealtimeError as error:
        sent = event.get("event_id") if isinstance(event, dict) else None
        assert error.event().get("error", {}).get("event_id") == (
            sent if isinstance(sent, str) else None
        )
        SERVER_EVENT.validate_python(error.event())
    else:
        assert parsed == event  # a valid event comes through unchanged


async def _run_session(events: list) -> list[dict]:
    sent: list[dict] = []

    async def send(event: dict) -> None:
        sent.append(json.loads(json.dumps(event)))  # exactly what would go on the wire

    with ThreadPoolExecutor(2) as pool:
        session = RealtimeSession(send, echo_responder, pool, Counts(), delay=0)
        await session.open()
        for event in events:
            await session.handle(json.dumps(event))
            await asyncio.sleep(0)  # let a response stream between some events
        if session.response is not None and session.response.task is not None:
            await session.response.task  # let the last one finish
        await session.close()
    return sent


@settings(max_examples=60, deadline=None)
@given(st.lists(client_events, max_size=8))
def test_a_session_fed_anything_keeps_the_protocols_promises(events) -> None:
    sent = asyncio.run(_run_session(events))
    assert sent[0]["type"] == "session.created"
    for event in sent:
        SERVER_EVENT.validate_python(event)  # every one a valid GA event
    ids = [event["event_id"] for event in sent]
    assert len(set(ids)) == len(ids)
    # Every response that starts ends, once, and its deltas make its text (or transcript).
    created = [e["response"]["id"] for e in sent if e["type"] == "response.created"]
    done = [e["response"] for e in sent if e["type"] == "response.done"]
    assert [r["id"] for r in done] == created
    for response in done:
        deltas = "".join(
            e["delta"]
            for e in sent
            if e["type"] in ("response.output_text.delta", "response.output_audio_transcript.delta")
            and e["response_id"] == response["id"]
        )
        part = response["output"][0]["content"][0]
        assert (
            part.get("text", part.get("transcript")) == deltas
        )  # an answer in audio: its transcript
        assert response["status"] in ("completed", "cancelled", "incomplete")
