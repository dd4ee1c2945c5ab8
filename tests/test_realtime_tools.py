"""Lesson 07's server: function calling over the Realtime API, driven by the official SDK.

Every server event is parsed with the SDK's own GA types and may carry no field those types
do not know (the session's ``id`` and ``object`` aside, which the service sends too).
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncAzureOpenAI, AsyncOpenAI, OpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnectionManager

from tests.sdk_events import NO_PROXY, ask_for_text, recv, strict, until, user_item
from workshop_lib import start_server
from workshop_lib.realtime.model import call_arguments, local_model
from workshop_lib.realtime.responder import Context, ToolCall
from workshop_lib.realtime.server import RealtimeLesson
from workshop_lib.realtime.session import Counts, RealtimeSession

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "The local time in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL_SEQUENCE = [
    "response.output_item.added",
    "conversation.item.added",
    # response.function_call_arguments.delta, one or more
    "response.function_call_arguments.done",
    "response.output_item.done",
    "conversation.item.done",
]


def clients(server) -> dict:
    return {
        "openai": AsyncOpenAI(api_key="k", websocket_base_url=server.links.ws("/v1")),
        "azure": AsyncAzureOpenAI(
            api_key="k",
            api_version="2025-08-28",
            azure_endpoint=server.http_url,
            azure_deployment="workshop-local",
            websocket_base_url=server.links.ws("/openai"),
        ),
    }


def connect(server, kind: str = "openai") -> AsyncRealtimeConnectionManager:
    """An SDK realtime connection to ``server``'s local model (use with ``async with``)."""
    return clients(server)[kind].realtime.connect(
        model="workshop-local", websocket_connection_options=NO_PROXY
    )


def without_deltas(events: list[dict]) -> list[str]:
    skip = {"response.function_call_arguments.delta", "response.output_text.delta"}
    return [e["type"] for e in events if e["type"] not in skip]


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_the_tool_loop_with_the_async_sdk(realtime, kind) -> None:
    async def main() -> None:
        async with connect(realtime, kind) as connection:
            await recv(connection)  # session.created
            # Text, asked for as on the service (which answers in audio by default).
            text_tools = {"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER]}
            await connection.session.update(session=text_tools)
            updated = await recv(connection)
            assert updated["session"]["tools"][0]["name"] == "get_weather"
            await connection.conversation.item.create(
                item=user_item("What is the weather in Paris?")
            )
            await until(connection, "conversation.item.done")
            await connection.response.create()
            events = await until(connection, "rate_limits.updated")
            assert without_deltas(events) == [
                "response.created",
                *CALL_SEQUENCE,
                "response.done",
                "rate_limits.updated",
            ]
            added = events[1]["item"]
            assert added["type"] == "function_call" and added["arguments"] == ""
            deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
            done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert len(deltas) > 1 and "".join(d["delta"] for d in deltas) == done["arguments"]
            assert {d["call_id"] for d in deltas} == {done["call_id"]} == {added["call_id"]}
            assert json.loads(done["arguments"]) == {"city": "Paris"}
            assert done["name"] == "get_weather"
            call = events[-2]["response"]["output"][0]
            assert call["type"] == "function_call" and call["arguments"] == done["arguments"]

            # The output starts nothing: the next event after its item is the retrieve's answer.
            output = {"city": "Paris", "temperature_c": 18, "conditions": "sunny"}
            await connection.conversation.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": json.dumps(output),
                }
            )
            created = await until(connection, "conversation.item.done")
            assert [e["type"] for e in created] == [
                "conversation.item.added",
                "conversation.item.done",
            ]
            assert created[0]["previous_item_id"] == call["id"]
            await connection.send(
                {"type": "conversation.item.retrieve", "item_id": created[0]["item"]["id"]}
            )
            retrieved = await recv(connection)
            assert retrieved["type"] == "conversation.item.retrieved"
            assert retrieved["item"]["output"] == json.dumps(output)

            await connection.response.create()
            answer = await until(connection, "response.done")
            text = next(e for e in answer if e["type"] == "response.output_text.done")["text"]
            assert "Paris" in text and "18" in text and "sunny" in text

    asyncio.run(main())


def test_parallel_calls_with_the_sync_sdk_and_parallel_tool_calls_false(realtime) -> None:
    client = OpenAI(api_key="k", websocket_base_url=realtime.links.ws("/v1"))
    with client.realtime.connect(
        model="workshop-local", websocket_connection_options=NO_PROXY
    ) as connection:

        def events_until(kind: str) -> list[dict]:
            seen: list[dict] = []
            while not seen or seen[-1]["type"] != kind:
                seen.append(strict(connection.recv_bytes()))
            return seen

        events_until("session.created")
        connection.session.update(session={"type": "realtime", "tools": [WEATHER, TIME]})
        events_until("session.updated")
        connection.conversation.item.create(
            item=user_item("What is the weather in Paris and Tokyo, in celsius?")
        )
        connection.response.create()
        done = events_until("response.done")[-1]["response"]
        calls = [(c["name"], json.loads(c["arguments"])) for c in done["output"]]
        assert calls == [
            ("get_weather", {"city": "Paris", "unit": "celsius"}),
            ("get_weather", {"city": "Tokyo", "unit": "celsius"}),
        ]
        assert len({c["call_id"] for c in done["output"]}) == 2
        # Output indexes count the calls: each call's events name its own.
        connection.response.create(response={"parallel_tool_calls": False})
        events = events_until("response.done")
        assert len(events[-1]["response"]["output"]) == 1
        # Two tools named in one message: one call each.
        connection.conversation.item.create(item=user_item("Weather and time in Oslo"))
        connection.response.create()
        done = events_until("response.done")[-1]["response"]
        assert [c["name"] for c in done["output"]] == ["get_weather", "get_time"]
        assert [e["output_index"] for e in done["output"] if "output_index" in e] == []


BAD_SESSIONS = [
    ({"type": "realtime", "tools": "x"}, "invalid_type", "session.tools"),
    ({"type": "realtime", "tool_choice": 123}, "invalid_type", "session.tool_choice"),
    (
        {"type": "realtime", "audio": {"output": {"voice": 7}}},
        "invalid_type",
        "session.audio.output.voice",
    ),
    (
        {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "bogus"}}}},
        "invalid_value",
        "session.audio.input.turn_detection.type",
    ),
    (
        {"type": "realtime", "audio": {"input": {"format": "pcm16"}}},
        "invalid_type",
        "session.audio.input.format",
    ),
    (
        {"type": "realtime", "tools": [{"name": "f", "parameters": {}}]},
        "missing_required_parameter",
        "session.tools[0].type",
    ),
    ({"type": "realtime", "tool_choice": "sometimes"}, "invalid_value", "session.tool_choice"),
    (
        {"type": "realtime", "tool_choice": {"type": "function", "name": "nope"}},
        "invalid_value",
        "session.tool_choice.name",
    ),
    (
        {"type": "realtime", "parallel_tool_calls": "yes"},
        "invalid_type",
        "session.parallel_tool_calls",
    ),
    ({"type": "realtime", "instructions": None}, "invalid_type", "session.instructions"),
    (
        {"type": "realtime", "audio": {"output": {"speed": 9}}},
        "decimal_above_max_value",
        "session.audio.output.speed",
    ),
    # The preview ("beta") shapes, answered as the GA service answers them.
    ({"modalities": ["text"]}, "unknown_parameter", "session.modalities"),
    ({"instructions": "hi"}, "missing_required_parameter", "session.type"),
    (
        {"type": "realtime", "input_audio_format": "pcm16"},
        "unknown_parameter",
        "session.input_audio_format",
    ),
    ({"type": "realtime", "voice": "alloy"}, "unknown_parameter", "session.voice"),
    ({"type": "realtime", "turn_detection": None}, "unknown_parameter", "session.turn_detection"),
]


def test_bad_session_updates_get_errors_and_change_nothing(realtime) -> None:
    async def main() -> None:
        async with connect(realtime) as connection:
            before = (await recv(connection))["session"]
            for index, (session, code, param) in enumerate(BAD_SESSIONS):
                await connection.send(
                    {"type": "session.update", "session": session, "event_id": f"bad{index}"}
                )
                error = (await recv(connection))["error"]
                assert (error["code"], error["param"]) == (code, param), (session, error)
                assert error["event_id"] == f"bad{index}"
            await connection.session.update(session={"type": "realtime"})
            after = (await recv(connection))["session"]
            assert after == before

    asyncio.run(main())


def test_nested_updates_merge_and_turn_detection_gets_its_defaults(realtime) -> None:
    async def main() -> None:
        async with connect(realtime) as connection:
            await recv(connection)
            await connection.session.update(
                session={"type": "realtime", "audio": {"output": {"voice": "marin"}}}
            )
            await recv(connection)
            await connection.session.update(
                session={
                    "type": "realtime",
                    "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
                }
            )
            audio = (await recv(connection))["session"]["audio"]
            assert audio["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
            assert audio["output"]["voice"] == "marin"
            vad = audio["input"]["turn_detection"]
            assert vad["threshold"] == 0.5 and vad["silence_duration_ms"] == 500

    asyncio.run(main())


def test_items_previous_item_id_retrieve_delete_and_wrong_call_ids(realtime) -> None:
    async def main() -> None:
        async with connect(realtime) as connection:
            await recv(connection)
            await connection.conversation.item.create(item={**user_item("one"), "id": "a"})
            await until(connection, "conversation.item.done")
            await connection.conversation.item.create(item={**user_item("two"), "id": "b"})
            await until(connection, "conversation.item.done")
            await connection.conversation.item.create(
                item={**user_item("zero"), "id": "z"}, previous_item_id="root"
            )
            first = await until(connection, "conversation.item.done")
            assert first[0]["previous_item_id"] is None
            await connection.conversation.item.create(
                item={**user_item("half"), "id": "h"}, previous_item_id="a"
            )
            assert (await until(connection, "conversation.item.done"))[0]["previous_item_id"] == "a"
            for bad, code, param in [
                (
                    {"item": user_item("x"), "previous_item_id": "nope"},
                    "item_not_found",
                    "previous_item_id",
                ),
                (
                    {"item": {"type": "function_call_output", "call_id": "call_x", "output": "{}"}},
                    "invalid_value",
                    "item.call_id",
                ),
                (
                    {"item": {"type": "function_call_output", "call_id": "c", "output": {"a": 1}}},
                    "invalid_type",
                    "item.output",
                ),
                (
                    {"item": {"type": "function_call", "name": "f"}},
                    "missing_required_parameter",
                    "item.arguments",
                ),
                ({"item": {**user_item("x"), "content": "hello"}}, "invalid_type", "item.content"),
            ]:
                await connection.send({"type": "conversation.item.create", **bad})
                error = (await recv(connection))["error"]
                assert (error["code"], error["param"]) == (code, param), error
            await connection.conversation.item.delete(item_id="b")
            assert (await recv(connection)) | {"event_id": ""} == {
                "type": "conversation.item.deleted",
                "item_id": "b",
                "event_id": "",
            }
            await connection.conversation.item.retrieve(item_id="b")
            assert (await recv(connection))["error"]["code"] == "item_not_found"
            # The conversation, in its order, as the responder sees it.
            await connection.response.create(response={"conversation": "none"})
            await until(connection, "response.done")

    asyncio.run(main())


def test_response_settings_win_and_the_responder_gets_the_context() -> None:
    seen: list[Context] = []

    def spy(context: Context):
        seen.append(context)
        yield "ok"

    with start_server(port=0, lessons=[RealtimeLesson(spy, delay=0)]) as server:

        async def main() -> None:
            async with connect(server) as connection:
                await recv(connection)
                await connection.session.update(
                    session={"type": "realtime", "instructions": "Session.", "tools": [WEATHER]}
                )
                await recv(connection)
                await connection.conversation.item.create(item={**user_item("hi"), "id": "u1"})
                await until(connection, "conversation.item.done")
                await connection.response.create()
                await until(connection, "response.done")
                await connection.response.create(
                    response={
                        "instructions": "Response.",
                        "tools": [TIME],
                        "tool_choice": {"type": "function", "name": "get_time"},
                        "parallel_tool_calls": False,
                        "input": [{"type": "item_reference", "id": "u1"}, user_item("more")],
                    }
                )
                await until(connection, "response.done")

        asyncio.run(main())
    session_wide, own = seen
    assert (session_wide.instructions, session_wide.tools[0]["name"]) == ("Session.", "get_weather")
    assert session_wide == "hi" and session_wide.items[0]["id"] == "u1"
    assert (own.instructions, own.tools[0]["name"], own.parallel_tool_calls) == (
        "Response.",
        "get_time",
        False,
    )
    assert own.tool_choice == {"type": "function", "name": "get_time"}
    assert own == "more" and own.items[0]["id"] == "u1"


def test_a_learners_responder_calls_a_tool_and_bad_calls_fail_the_response(caplog) -> None:
    def model(context: Context):
        if context.outputs:
            yield f"Got {context.outputs[0]['output']} from {context.outputs[0]['name']}."
        elif context == "bad":
            yield ToolCall("no spaces allowed", {})
        else:
            yield "Let me check. "
            yield ToolCall("lookup", {"q": context.text})

    with start_server(port=0, lessons=[RealtimeLesson(model, delay=0)]) as server:

        async def main() -> tuple[list[dict], list[dict], list[dict]]:
            async with connect(server, "azure") as connection:
                await ask_for_text(connection)
                await connection.conversation.item.create(item=user_item("cats"))
                await connection.response.create()
                first = await until(connection, "response.done")
                call = first[-1]["response"]["output"][1]
                await connection.conversation.item.create(
                    item={"type": "function_call_output", "call_id": call["call_id"], "output": "7"}
                )
                await connection.response.create()
                second = await until(connection, "response.done")
                await connection.conversation.item.create(item=user_item("bad"))
                await connection.response.create()
                third = await until(connection, "response.done")
                return first, second, third

        first, second, third = asyncio.run(main())
    output = first[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call"]
    # The message is finished before the call begins, each at its own output_index.
    kinds = without_deltas(first)
    second_item = kinds.index("response.output_item.added", kinds.index("response.created") + 2)
    assert kinds.index("response.output_item.done") < second_item
    assert {e["output_index"] for e in first if e.get("item_id") == output[1]["id"]} == {1}
    assert json.loads(output[1]["arguments"]) == {"q": "cats"}
    assert "Got 7 from lookup." in [e.get("text") for e in second]
    assert third[-1]["response"]["status"] == "failed"
    assert "no spaces allowed" in third[-1]["response"]["status_details"]["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_response_input_of_the_wrong_shape_is_an_error_not_a_traceback(realtime, caplog) -> None:
    async def main() -> list[dict]:
        async with connect(realtime) as connection:
            await recv(connection)
            answers = []
            for content in ("hello", [1, 2]):
                await connection.send(
                    {
                        "type": "response.create",
                        "event_id": "r1",
                        "response": {
                            "input": [{"type": "message", "role": "user", "content": content}]
                        },
                    }
                )
                answers.append(await recv(connection))
            return answers

    caplog.set_level(logging.DEBUG)
    string, ints = asyncio.run(main())
    assert (string["error"]["code"], string["error"]["param"]) == (
        "invalid_type",
        "response.input[0].content",
    )
    assert (ints["error"]["code"], ints["error"]["param"]) == (
        "invalid_type",
        "response.input[0].content[0]",
    )
    assert string["error"]["event_id"] == "r1"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_function_call_output_answers_with_words_that_use_its_values() -> None:
    weather = {"type": "function_call", "name": "get_weather", "call_id": "c1", "arguments": "{}"}
    clock = {"type": "function_call", "name": "get_time", "call_id": "c2", "arguments": "{}"}
    warm = {"type": "function_call_output", "call_id": "c1", "output": '{"temperature_c": 18}'}
    broken = {"type": "function_call_output", "call_id": "c2", "output": '{"error": "no clock"}'}
    parallel = [user_item("weather in Paris"), weather, clock, warm, broken]
    context = Context("weather in Paris", items=parallel, tools=[WEATHER, TIME])
    said = "".join(local_model(context))
    assert said == "get_weather says: temperature_c 18. Sorry, get_time failed: no clock."
    # One call after another: the answer is about the outputs that end the conversation.
    in_turn = [user_item("weather in Paris"), weather, warm, clock, broken]
    context = Context("weather in Paris", items=in_turn, tools=[WEATHER, TIME])
    assert "".join(local_model(context)) == "Sorry, get_time failed: no clock."
    # A forced choice calls again, as the service's required does.
    forced = Context("weather in Paris", items=parallel, tools=[WEATHER], tool_choice="required")
    assert [type(c) for c in local_model(forced)] == [ToolCall]


def test_the_models_arguments_fit_the_schema() -> None:
    schema = {
        "name": "book",
        "parameters": {
            "type": "object",
            "properties": {
                "nights": {"type": "integer", "minimum": 1, "maximum": 14},
                "city": {"type": "string"},
                "room": {"type": "string", "enum": ["single", "double"]},
                "breakfast": {"type": "boolean"},
            },
            "required": ["nights", "city", "room", "breakfast"],
        },
    }
    assert call_arguments("Book 30 nights in Rome, a double room", schema) == {
        "nights": 14,
        "city": "Rome",
        "room": "double",
        "breakfast": False,
    }
    assert call_arguments("book something", schema) == {
        "nights": 1,
        "city": "book something",
        "room": "single",
        "breakfast": False,
    }
    no_tools = list(local_model(Context("hello there")))
    assert "".join(no_tools) == "You said “hello there”: 2 words."


def test_a_sessions_conversation_is_bounded_in_bytes() -> None:
    sent: list[dict] = []

    async def send(event: dict) -> None:
        sent.append(strict(json.dumps(event)))

    async def main() -> RealtimeSession:
        with ThreadPoolExecutor(1) as pool:
            session = RealtimeSession(send, local_model, pool, Counts(), delay=0)
            for index in range(40):
                event = {"type": "conversation.item.create", "item": user_item("x" * 30_000)}
                event["item"]["id"] = f"i{index}"
                await session.handle(json.dumps(event))
            return session

    session = asyncio.run(main())
    size = sum(len(json.dumps(i)) for i in session.items)
    assert size <= session.max_item_bytes
    assert [i["id"] for i in session.items][-1] == "i39" and len(session.items) == 8


# -- random shapes: nothing the server says fails the SDK's types ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(-2, 2) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def maybe(strategy):
    return strategy | json_values


tools = st.lists(
    st.fixed_dictionaries(
        {"type": maybe(st.just("function")), "name": maybe(st.sampled_from(["get_weather", "f"]))},
        optional={
            "description": maybe(st.sampled_from(["The weather in a city.", ""])),
            "parameters": maybe(st.just(WEATHER["parameters"])),
        },
    ),
    max_size=2,
)
choices = st.sampled_from(
    ["auto", "none", "required", {"type": "function", "name": "get_weather"}, 1, "x"]
)
items = st.one_of(
    st.fixed_dictionaries(
        {
            "type": maybe(st.just("message")),
            "role": st.sampled_from(["user", "assistant", "system", "tool"]),
            "content": maybe(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(["input_text", "output_text", "input_audio"]),
                            "text": maybe(st.sampled_from(["weather in Paris", "hi"])),
                        }
                    ),
                    max_size=2,
                )
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call_output"),
            "call_id": maybe(st.sampled_from(["c1", "call_1"])),
            "output": maybe(st.just('{"temperature_c": 18}')),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call"),
            "name": maybe(st.just("get_weather")),
            "arguments": maybe(st.just("{}")),
            "call_id": maybe(st.just("c1")),
        }
    ),
    st.fixed_dictionaries({"type": st.just("item_reference"), "id": maybe(st.just("u1"))}),
)
settings_ = {
    "tools": tools,
    "tool_choice": choices,
    "parallel_tool_calls": maybe(st.booleans()),
    "instructions": maybe(st.just("Be brief.")),
    "max_output_tokens": st.sampled_from([1, 5, "inf", 0, 5000, "x"]),
}
events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("session.update")},
        optional={
            "session": st.fixed_dictionaries(
                {"type": maybe(st.just("realtime"))},
                optional={
                    **settings_,
                    "audio": maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "input": maybe(
                                    st.fixed_dictionaries(
                                        {},
                                        optional={
                                            "turn_detection": maybe(
                                                st.fixed_dictionaries(
                                                    {"type": st.just("server_vad")},
                                                    optional={"threshold": json_values},
                                                )
                                            ),
                                            "format": maybe(st.just({"type": "audio/pcmu"})),
                                        },
                                    )
                                ),
                                "output": maybe(
                                    st.fixed_dictionaries({"voice": maybe(st.just("cedar"))})
                                ),
                            },
                        )
                    ),
                    "modalities": json_values,
                },
            )
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("response.create")},
        optional={
            "response": st.fixed_dictionaries(
                {},
                optional={
                    **settings_,
                    "input": maybe(st.lists(items, max_size=3)),
                    "conversation": st.sampled_from(["auto", "none", "x"]),
                },
            )
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("conversation.item.create"), "item": items},
        optional={"previous_item_id": maybe(st.sampled_from(["root", "u1", "nope"]))},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["conversation.item.retrieve", "conversation.item.delete"])},
        optional={"item_id": maybe(st.sampled_from(["u1", "nope"]))},
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=1, max_size=6))
def test_random_shapes_get_only_events_the_sdk_parses(sequence) -> None:
    sent: list[dict] = []

    async def send(event: dict) -> None:
        sent.append(strict(json.dumps(event, ensure_ascii=False)))

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            session = RealtimeSession(send, local_model, pool, Counts(), delay=0)
            await session.open()
            await session.handle(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {**user_item("weather in Paris"), "id": "u1"},
                    }
                )
            )
            for event in sequence:
                await session.handle(json.dumps(event))
                if session.response is not None and session.response.task is not None:
                    await session.response.task
            await session.close()

    asyncio.run(main())
    # Every response.create got either an error or a whole response.
    created = sum(1 for e in sequence if e["type"] == "response.create")
    answered = sum(1 for e in sent if e["type"] in ("response.done", "error"))
    assert answered >= created


def test_a_full_sessions_memory_stays_under_two_mib() -> None:
    """The worst case docs/realtime.md states: items at their caps and a full audio buffer."""
    import base64
    import tracemalloc

    async def nothing(event: dict) -> None:
        pass

    async def fill(session: RealtimeSession, text: str) -> None:
        for _ in range(300):
            event = {"type": "conversation.item.create", "item": user_item(text)}
            await session.handle(json.dumps(event, ensure_ascii=False))
        chunk = base64.b64encode(b"\0" * 40_000).decode()
        for _ in range(session.max_audio // 40_000 + 2):
            await session.handle(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))

    async def measure(text: str) -> float:
        with ThreadPoolExecutor(1) as pool:
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                sessions = [RealtimeSession(nothing, local_model, pool, Counts()) for _ in range(3)]
                for session in sessions:
                    await fill(session, text)
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
        assert all(len(s.audio) > s.max_audio - 40_000 for s in sessions)
        return sum(s.size_diff for s in after.compare_to(before, "filename")) / 3

    for text in ("é" * 30_000, "x" * 1_200):  # few big items; many small ones
        assert asyncio.run(measure(text)) < 2 * 2**20


def test_a_call_cancelled_mid_arguments_ends_incomplete_in_order() -> None:
    def long_call(context: Context):
        yield ToolCall("lookup", {f"key{i}": i for i in range(40)})

    with start_server(port=0, lessons=[RealtimeLesson(long_call, delay=0.02)]) as server:

        async def main() -> list[dict]:
            async with connect(server) as connection:
                await recv(connection)
                await connection.response.create()
                seen = []
                while True:
                    event = await recv(connection)
                    seen.append(event)
                    if event["type"] == "response.function_call_arguments.delta":
                        await connection.response.cancel()
                        break
                return seen + await until(connection, "response.done")

        events = asyncio.run(main())
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    (call,) = done["output"]
    assert call["status"] == "incomplete" and call["type"] == "function_call"
    streamed = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    assert call["arguments"] == streamed and 0 < len(streamed) < 100
    kinds = without_deltas(events)
    assert "response.function_call_arguments.done" not in kinds
    assert kinds[-3:] == ["response.output_item.done", "conversation.item.done", "response.done"]
