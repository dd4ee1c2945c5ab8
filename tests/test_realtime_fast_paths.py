"""The Realtime server's shortcuts on a response's way to its first delta give the same answers.

An item's size is measured once and the conversation's total kept as items come and go; the
local model works out a tool's words once and matches them by set lookups. Each is checked
against the plain computation it stands for.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sdk_events import strict
from workshop_lib.realtime.model import _keywords, _words, local_model, matching_tools
from workshop_lib.realtime.session import Counts, RealtimeSession
from workshop_lib.realtime.wire import encode


def _user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_the_conversations_byte_total_follows_its_items() -> None:
    async def send(event: dict) -> None:
        pass

    async def main() -> RealtimeSession:
        with ThreadPoolExecutor(1) as pool:
            session = RealtimeSession(
                send, local_model, pool, Counts(), delay=0, max_item_bytes=20_000
            )
            for index in range(12):
                text = f"“{index}” " + "é" * (700 * (index % 4))  # not ASCII: sizes as written
                event = {"type": "conversation.item.create", "item": _user(text)}
                await session.handle(json.dumps(event))
                if index % 3 == 0:  # an answer: in progress, then replaced by its final form
                    await session.handle('{"type": "response.create"}')
                    assert session.response is not None and session.response.task is not None
                    await session.response.task
                if index % 5 == 4:
                    item_id = session.items[1]["id"]
                    delete = {"type": "conversation.item.delete", "item_id": item_id}
                    await session.handle(json.dumps(delete))
            return session

    session = asyncio.run(main())
    sizes = {i["id"]: len(json.dumps(i, ensure_ascii=False)) for i in session.items}
    assert session._sizes == sizes
    assert session._total == sum(sizes.values()) <= 20_000
    assert len(session.items) < 12 + 4  # the cap dropped the oldest


def _same(word: str, keyword: str) -> bool:
    """The rule as the notebook states it: five letters or more compare by the first five."""
    if len(word) >= 5 and len(keyword) >= 5:
        return word[:5] == keyword[:5]
    return word == keyword


def _reference(text: str, tools: list[dict]) -> list[dict]:
    words = _words(text)
    scored = []
    for index, tool in enumerate(tools):
        name_words, described = _keywords(tool)
        score = sum(2 for k in name_words if any(_same(w, k) for w in words))
        score += sum(1 for k in described if any(_same(w, k) for w in words))
        if score:
            scored.append((-score, index, tool))
    return [tool for _, _, tool in sorted(scored, key=lambda s: s[:2])]


VOCABULARY = [
    "weather",
    "weathers",
    "wea",
    "temp",
    "temperatures",
    "city",
    "cities",
    "book",
    "booking",
    "get",
    "the",
    "in",
    "Paris",
    "flight",
    "flights",
    "x",
    "room",
]
phrases = st.lists(st.sampled_from(VOCABULARY), max_size=8).map(" ".join)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "name": phrases.map(lambda p: p.replace(" ", "_")),
            "description": phrases,
        }
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(text=phrases, declared=tools)
def test_tool_matching_by_set_lookups_is_the_five_letter_rule(text: str, declared: list) -> None:
    assert matching_tools(text, declared) == _reference(text, declared)


# -- events written as text: the same bytes as the dicts they stand for ----------------------

_IDS = re.compile(r"\b(event|item|resp|call|conv|sess)_[0-9a-f]{22}\b")


def _tricky_responder(text: str):
    """Chunks whose JSON needs escaping: quotes, backslashes, control characters, not ASCII."""
    yield from ['Say "hi"\\n ', "é ✓ \u2028 ", "\n\t\x01 ", "<&>'"]


_tricky_responder.runs_on_loop = True  # type: ignore[attr-defined]


class _TextWriter:
    """A send that takes JSON text, as the server's EventWriter: what it got, as text."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send(self, event: dict | str) -> None:
        self.frames.append(event if isinstance(event, str) else encode(event))

    send.takes_text = True  # type: ignore[attr-defined]

    def write_now(self, text: str) -> bool:
        self.frames.append(text)
        return True


def _exchange(text_writer: bool, responder, messages: list[str], delay: float) -> list[str]:
    """The frames one session sends for ``messages``, with ids numbered in order of use."""
    writer = _TextWriter()

    async def send_dict(event: dict) -> None:
        assert isinstance(event, dict)
        writer.frames.append(json.dumps(event, ensure_ascii=False))

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            send = writer.send if text_writer else send_dict
            session = RealtimeSession(send, responder, pool, Counts(), delay=delay)
            await session.open()
            for message in messages:
                calls = [i["call_id"] for i in session.items if i["type"] == "function_call"]
                await session.handle(message.replace("CALL_ID", calls[-1] if calls else "x"))
                if session.response is not None and session.response.task is not None:
                    await session.response.task

    asyncio.run(main())
    numbers: dict[str, str] = {}
    return [
        _IDS.sub(lambda m: numbers.setdefault(m[0], f"{m[1]}_{len(numbers)}"), frame)
        for frame in writer.frames
    ]


@pytest.mark.parametrize("delay", [0, 0.001])
def test_events_built_as_text_are_the_bytes_of_their_dicts(delay: float) -> None:
    odd_id = 'it"em\\é'  # a client's own item id, which the events quote back
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    item = {"type": "conversation.item.create", "item": {"id": odd_id, **_user("Hi “there”")}}
    # Answers in text (the session's default is audio, as the service's): the text deltas
    # are what is built as text.
    in_text = {
        "type": "session.update",
        "session": {"type": "realtime", "output_modalities": ["text"]},
    }
    text = [json.dumps(in_text), json.dumps(item), '{"type": "response.create"}']
    tools = [
        json.dumps(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"], "tools": [weather]},
            }
        ),
        json.dumps({"type": "conversation.item.create", "item": _user("Weather in Paris?")}),
        '{"type": "response.create"}',
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": "CALL_ID",
                    "output": '{"t": 1}',
                },
            }
        ),
        '{"type": "response.create"}',
    ]
    for responder, messages in ((_tricky_responder, text), (local_model, tools)):
        as_text = _exchange(True, responder, messages, delay)
        as_dicts = _exchange(False, responder, messages, delay)
        assert as_text == as_dicts
        kinds = [json.loads(frame)["type"] for frame in as_text]
        assert "response.done" in kinds
        for frame in as_text:
            strict(frame)  # and the SDK's own types read each one
    assert any("response.function_call_arguments.delta" in f for f in as_text)
    assert any(
        '\\"' in f and "output_text.delta" in f
        for f in _exchange(True, _tricky_responder, text, delay)
    )
