"""A response's first delta leaves in the same step as its ``response.create``: no loop turn.

When a hundred sessions ask at once, each ``await`` that gives the loop a turn on the way to
the first delta would put every session's first delta behind the other sessions' work
(``bench/realtime_turns.py`` counts the turns on the real server). With a responder that
runs on the loop, ``handle()`` must therefore finish without suspending, its frames ending
in the first text delta (or the first arguments delta of a call), every one of them valid
for the SDK's strict types. The rest of the response is the task's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.sdk_events import strict
from workshop_lib.realtime.model import local_model
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.session import Counts, RealtimeSession

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


class _Sink:
    """The server's EventWriter without a socket: takes text, writes a delta at once."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send(self, event: dict | str) -> None:
        self.frames.append(event if isinstance(event, str) else json.dumps(event))

    send.takes_text = True  # type: ignore[attr-defined]

    def write_now(self, text: str) -> bool:
        self.frames.append(text)
        return True


def _in_one_step(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` one step; fail if it suspends (it would give the loop a turn)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    pytest.fail("the handler suspended before it finished: the loop would run other work first")


def _item(text: str) -> str:
    content = [{"type": "input_text", "text": text}]
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": content},
        }
    )


@pytest.mark.parametrize(
    ("responder", "tools", "question", "first"),
    [
        (echo_responder, [], "one two three", "response.output_text.delta"),
        (local_model, [], "Hello there", "response.output_text.delta"),
        (
            local_model,
            [WEATHER],
            "What is the weather in Paris?",
            "response.function_call_arguments.delta",
        ),
    ],
)
@pytest.mark.parametrize("delay", [0.0, 0.02])
def test_response_create_writes_its_first_delta_without_a_loop_turn(
    responder: Any, tools: list, question: str, first: str, delay: float
) -> None:
    sink = _Sink()

    async def main() -> list[str]:
        with ThreadPoolExecutor(1) as pool:
            session = RealtimeSession(sink.send, responder, pool, Counts(), delay=delay)
            update = {"type": "realtime", "output_modalities": ["text"], "tools": tools}
            await session.handle(json.dumps({"type": "session.update", "session": update}))
            await session.handle(_item(question))
            assert json.loads(sink.frames[0])["type"] == "session.updated"
            sink.frames.clear()
            _in_one_step(session.handle('{"type": "response.create"}'))
            opening = list(sink.frames)
            assert session.response is not None and session.response.task is not None
            await session.response.task  # the rest streams from the task, in order
            return opening

    opening = asyncio.run(main())
    kinds = [json.loads(frame)["type"] for frame in opening]
    assert kinds[0] == "response.created"
    assert kinds[-1] == first
    assert kinds.count(first) == 1
    for frame in sink.frames:
        strict(frame)
    whole = [json.loads(frame)["type"] for frame in sink.frames]
    assert whole[: len(kinds)] == kinds
    assert whole[-2:] == ["response.done", "rate_limits.updated"]
