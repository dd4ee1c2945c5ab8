"""Where a response waits the lesson's ``delay``: between deltas, never before the first audio.

The session's pauses are read exactly, not timed: its module's ``asyncio.sleep`` is replaced
by a marker in the stream of events it sends (the way ``bench/realtime_voice.py`` records
the frames its bare server replays), so a busy machine cannot blur them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workshop_lib.realtime import session as session_module
from workshop_lib.realtime.audio import pcm_to_b64
from workshop_lib.realtime.model import local_model
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.session import Counts, RealtimeSession
from workshop_lib.realtime.speech import synthesize

PAUSE = "(pause)"
QUESTION = "What is the weather like in Paris today?"


class Pauses:
    """Stands in for the session module's ``asyncio``: a sleep is noted, not waited."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float, result: object = None) -> object:
        if seconds:
            self.sent.append(PAUSE)
        await asyncio.sleep(0)
        return result


def exchange(monkeypatch, responder: Callable, session: dict, messages: list[dict]) -> list[str]:
    """The event types (and pauses) a session with ``delay=0.05`` sends for ``messages``."""
    sent: list[str] = []
    monkeypatch.setattr(session_module, "asyncio", Pauses(sent))

    async def send(event: dict) -> None:
        sent.append(event["type"])

    async def main() -> None:
        with ThreadPoolExecutor(2) as pool:
            s = RealtimeSession(send, responder, pool, Counts(), delay=0.05)
            await s.handle(json.dumps({"type": "session.update", "session": session}))
            for message in messages:
                await s.handle(json.dumps(message))
                if s.response is not None and s.response.task is not None:
                    await s.response.task

    asyncio.run(main())
    return sent


def item(text: str) -> dict:
    content = [{"type": "input_text", "text": text}]
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }


def audio_deltas_and_pauses(sent: list[str]) -> list[str]:
    """From the response's start: its audio deltas and the pauses, nothing else."""
    start = sent.index("response.created")
    return [k for k in sent[start:] if k in (PAUSE, "response.output_audio.delta")]


AUDIO = {"type": "realtime", "output_modalities": ["audio"]}


@pytest.mark.parametrize("responder", [local_model, echo_responder], ids=["model", "echo"])
def test_an_answer_in_audio_starts_at_once_and_pauses_between_its_deltas(monkeypatch, responder):
    # Both responders run on the loop (their first chunk is fetched in the handler's turn).
    assert responder.runs_on_loop
    sent = exchange(monkeypatch, responder, AUDIO, [item(QUESTION), {"type": "response.create"}])
    paced = audio_deltas_and_pauses(sent)
    deltas = paced.count("response.output_audio.delta")
    assert deltas >= 5  # a sentence of speech: a second or more, in 200 ms deltas
    # No pause before the first audio (nothing was sent that a pause would follow), one
    # between each two deltas, none after the last.
    assert paced == ["response.output_audio.delta", PAUSE] * (deltas - 1) + [
        "response.output_audio.delta"
    ]


def test_a_spoken_turn_is_answered_without_a_pause_before_its_first_audio(monkeypatch):
    speech = synthesize(QUESTION).samples
    audio = np.concatenate([np.zeros(24 * 500, np.int16), speech, np.zeros(24 * 1500, np.int16)])
    appends = [
        {"type": "input_audio_buffer.append", "audio": pcm_to_b64(audio[i : i + 24 * 20])}
        for i in range(0, len(audio), 24 * 20)
    ]
    session = {**AUDIO, "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    sent = exchange(monkeypatch, local_model, session, appends)
    stopped = sent.index("input_audio_buffer.speech_stopped")
    first_audio = sent.index("response.output_audio.delta")
    assert "response.created" in sent[stopped:first_audio]
    assert PAUSE not in sent[stopped:first_audio]
    assert sent.count("response.done") == 1


def test_a_text_answer_still_pauses_after_its_first_delta(monkeypatch):
    text = {"type": "realtime", "output_modalities": ["text"]}
    sent = exchange(
        monkeypatch, echo_responder, text, [item(QUESTION), {"type": "response.create"}]
    )
    first = sent.index("response.output_text.delta")
    assert sent[first + 1] == PAUSE
    assert PAUSE not in sent[:first]
