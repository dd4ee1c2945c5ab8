"""The Realtime server's shortcuts on a response's way to its first delta give the same answers.

An item's size is measured once and the conversation's total kept as items come and go; the
local model works out a tool's words once and matches them by set lookups. Each is checked
against the plain computation it stands for.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from workshop_lib.realtime.model import _keywords, _words, local_model, matching_tools
from workshop_lib.realtime.session import Counts, RealtimeSession


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
