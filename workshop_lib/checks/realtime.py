"""Exercises of notebook 05 (the Realtime API): assemble a streamed answer; a responder.

from workshop_lib.checks.realtime import q1, q2, ____
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

from ..realtime.client import LOCAL, openai_client, realtime_url
from ..realtime.server import RealtimeLesson
from ._base import CheckResult, Exercise, Failed, ____, run_coroutine, scratch_server

__all__ = ["____", "q1", "q2"]

# Seconds for the SDK to connect and get the whole answer: milliseconds on an idle machine,
# but the SDK's first use (its imports, its event types) is slow on a busy one.
SDK_WAIT = 30.0

CHUNKS = ["Web", "Sockets ", "stream ", "answers ", "in ", "pieces."]

# What a client that never asked for text gets told.
AUDIO_ANSWER = (
    "the answer came in audio (response.output_audio.delta events of base64, with the words "
    "in response.output_audio_transcript.delta), not in response.output_text.delta: the "
    "service answers in audio unless you ask for text. Send text_session(), a session.update "
    'with "output_modalities": ["text"], before your message'
)


def _known_chunks(text: str) -> Iterator[str]:
    """The check's responder: always the same pieces, so the right answer is known."""
    yield from CHUNKS


class AskAndAssemble(Exercise):
    """q1: ``async def ask(url, text)`` returns the answer joined from its deltas."""

    answer_name = "ask"
    hint_text = (
        "first `text_session()` (the service answers in audio unless you ask for text); "
        "after `response.create`, loop `async for message in websocket:`, parse it with "
        '`json.loads`, add `event["delta"]` to your text when `event["type"] == '
        '"response.output_text.delta"`, and `return` the text when the type is '
        '"response.done".'
    )
    timeout_hint = (
        "the answer was complete (response.done had arrived) and your loop was still waiting: "
        'return when event["type"] == "response.done"'
    )
    solution_file = "05_ask.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        expected = "".join(CHUNKS)
        with scratch_server(lessons=[RealtimeLesson(_known_chunks, delay=0)]) as server:
            got = self.run(answer, realtime_url(server), "Tell me about WebSockets", timeout=5)
            served = server.lesson("realtime").counts
        if not served.responses:
            raise Failed("the server never got a response.create: send it after your message")
        if got == expected:
            return CheckResult(True, f"you assembled {len(CHUNKS)} deltas into {got!r}")
        if served.spoken:
            raise Failed(AUDIO_ANSWER)
        if got == CHUNKS[-1]:
            raise Failed(f"you returned only the last delta, {got!r}: add each delta to the text")
        if isinstance(got, list):
            raise Failed(f"you returned a list ({got!r}); join the deltas into one string")
        raise Failed(f"the answer was {expected!r}, but you returned {got!r}")


class ReverseResponder(Exercise):
    """q2: a responder that yields the words of the text in reverse order, one per chunk."""

    hint_text = (
        "`words = text.split()`, then `for word in reversed(words): yield word` "
        "(a generator: each `yield` becomes one response.output_text.delta)."
    )
    solution_file = "05_reverse.py"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        text = "one small step for a learner"
        with scratch_server(lessons=[RealtimeLesson(answer, delay=0)]) as server:
            deltas: list[str] = []
            try:
                done = run_coroutine(_sdk_deltas(server, text, deltas), timeout=SDK_WAIT + 5)
            except TimeoutError:  # the SDK's wait, or this one's
                if len(deltas) > 100:
                    raise Failed(
                        f"the answer had not finished after {SDK_WAIT:g} s, and your "
                        f"responder had yielded {len(deltas)} pieces: it must end (return) "
                        "after the last word"
                    ) from None
                raise Failed(
                    f"no response.done within {SDK_WAIT:g} s ({len(deltas)} pieces came): "
                    "is your responder slow, or was this machine very busy? Run the check again"
                ) from None
        status = done["status"]
        if status == "failed":
            message = done["status_details"]["error"]["message"]
            raise Failed(f"the server could not use your responder: {message}")
        expected = list(reversed(text.split()))
        if [d.strip() for d in deltas] == expected:
            return CheckResult(
                True, f"the SDK saw {len(deltas)} deltas: {' | '.join(d.strip() for d in deltas)}"
            )
        if len(deltas) == 1:
            raise Failed(
                f"the client got one delta, {deltas[0]!r}: yield each word on its own, so "
                "the answer streams word by word"
            )
        raise Failed(f"the deltas were {deltas!r}; for {text!r} they should be {expected!r}")


async def _sdk_deltas(server: Any, text: str, deltas: list[str]) -> dict[str, Any]:
    """Ask through the official SDK; the final response (and the deltas, into ``deltas``)."""
    client = openai_client(server)
    async with asyncio.timeout(SDK_WAIT):
        async with client.realtime.connect(model="workshop-local", **LOCAL) as connection:
            # Text, asked for as on the service (which answers in audio by default).
            await connection.session.update(
                session={"type": "realtime", "output_modalities": ["text"]}
            )
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            )
            await connection.response.create()
            async for event in connection:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                elif event.type == "response.done":
                    return json.loads(event.response.to_json())
    raise Failed("the connection closed before response.done")


q1 = AskAndAssemble("q1")
q2 = ReverseResponder("q2")
