"""Lesson 08's server: answers in audio, turn detection, barge-in and truncate, driven by the
official SDK with real speech (eSpeak NG), every server event parsed by the SDK's strict types.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Iterator

import numpy as np
import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from workshop_lib import start_server
from workshop_lib.course import default_lessons
from workshop_lib.realtime import session as session_module
from workshop_lib.realtime.audio import b64_to_pcm, decode, pcm_to_b64, samples_to_ms
from workshop_lib.realtime.responder import echo_responder
from workshop_lib.realtime.server import RealtimeLesson
from workshop_lib.realtime.speech import synthesize, tones

from .sdk_events import strict
from .test_realtime_tools import NO_PROXY, recv, until, user_item

QUESTION = "What is the weather like in Paris today?"
AUDIO_SEQUENCE = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    # response.output_audio_transcript.delta and response.output_audio.delta, interleaved
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "rate_limits.updated",
]
DELTAS = {"response.output_audio.delta", "response.output_audio_transcript.delta"}


@pytest.fixture
def realtime() -> Iterator:
    with start_server(port=0, lessons=[RealtimeLesson(delay=0)]) as running:
        yield running


def client(server) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="k", websocket_base_url=server.links.ws("/v1"))


def spoken(text: str = QUESTION, before_ms: int = 500, after_ms: int = 1500) -> np.ndarray:
    """Real speech between silences, 24 kHz PCM16."""
    speech = synthesize(text).samples
    return np.concatenate(
        [np.zeros(24 * before_ms, np.int16), speech, np.zeros(24 * after_ms, np.int16)]
    )


async def stream(connection, samples: np.ndarray, chunk_ms: int = 200) -> None:
    n = 24 * chunk_ms
    for start in range(0, len(samples), n):
        await connection.input_audio_buffer.append(audio=pcm_to_b64(samples[start : start + n]))


VAD = {"type": "server_vad"}


def audio_session(**input_: object) -> dict:
    return {"type": "realtime", "output_modalities": ["audio"], "audio": {"input": input_}}


def test_an_answer_in_audio_is_speech_with_its_transcript_in_the_services_order(realtime) -> None:
    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            await connection.session.update(session=audio_session())
            assert (await recv(connection))["session"]["output_modalities"] == ["audio"]
            await connection.conversation.item.create(item=user_item(QUESTION))
            await until(connection, "conversation.item.done")
            await connection.response.create()
            return await until(connection, "rate_limits.updated")

    events = asyncio.run(main())
    assert [e["type"] for e in events if e["type"] not in DELTAS] == AUDIO_SEQUENCE
    assert events[0]["response"]["output_modalities"] == ["audio"]
    assert events[3]["part"] == {"type": "audio", "transcript": ""}
    audio = np.concatenate(
        [b64_to_pcm(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"]
    )
    transcript = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert QUESTION in transcript  # the local model repeats what it heard
    reference = synthesize(transcript).samples
    # eSpeak's speech, not a tone: as long as the engine says it (its state moves ~10 ms)
    assert abs(len(audio) - len(reference)) <= 24 * 40
    assert np.abs(audio.astype(np.int32)).max() > 3000
    # Each word's transcript leaves no later than the audio that says it: the first
    # transcript delta comes before the first audio delta.
    kinds = [e["type"] for e in events if e["type"] in DELTAS]
    assert kinds[0] == "response.output_audio_transcript.delta"
    done = events[-2]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_audio", "transcript": transcript}]


def test_g711_output_is_eight_kilohertz_mu_law(realtime) -> None:
    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            session = audio_session()
            session["audio"]["output"] = {"format": {"type": "audio/pcmu"}}
            await connection.session.update(session=session)
            await recv(connection)
            await connection.conversation.item.create(item=user_item("Hello there"))
            await connection.response.create()
            return await until(connection, "response.done")

    events = asyncio.run(main())
    wire = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    samples = decode(wire, "audio/pcmu")
    said = events[-1]["response"]["output"][0]["content"][0]["transcript"]
    reference = synthesize(said).samples
    assert abs(len(wire) - len(reference) / 3) <= 8 * 40  # one byte a sample at 8 kHz
    assert abs(len(samples) - len(reference)) <= 24 * 40


def test_server_vad_hears_real_speech_commits_the_turn_and_answers_honestly(realtime) -> None:
    audio = spoken()

    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            await connection.session.update(
                session={
                    "type": "realtime",
                    "audio": {
                        "input": {"turn_detection": VAD, "transcription": {"model": "whisper-1"}}
                    },
                }
            )
            await recv(connection)
            await stream(connection, audio)
            return await until(connection, "response.done")

    events = asyncio.run(main())
    kinds = [e["type"] for e in events]
    assert kinds[:7] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.failed",
        "response.created",
    ]
    started, stopped, committed, added, _, failed = events[:6]
    item_id = started["item_id"]
    assert stopped["item_id"] == committed["item_id"] == added["item"]["id"] == item_id
    # The speech starts 500 ms in; audio_start_ms includes the 300 ms of padding.
    assert 100 <= started["audio_start_ms"] <= 400
    speech_end = 500 + samples_to_ms(len(audio)) - 2000
    # audio_end_ms includes the 500 ms of silence (and WebRTC's hangover, up to ~250 ms).
    assert speech_end + 450 <= stopped["audio_end_ms"] <= speech_end + 800
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert "does not recognize speech" in failed["error"]["message"]
    # Answered in audio, the session's default, as the service's: the words are its transcript.
    answer = events[-1]["response"]["output"][0]["content"][0]["transcript"]
    heard = (stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000
    assert answer == f"I heard {heard:.1f} seconds of speech."


def test_idle_timeout_fires_on_the_audios_clock(realtime) -> None:
    silence = np.zeros(24 * 6500, np.int16)

    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            vad = {**VAD, "idle_timeout_ms": 6000}
            await connection.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
            )
            await recv(connection)
            await stream(connection, silence, chunk_ms=500)  # far faster than real time
            return await until(connection, "response.done")

    events = asyncio.run(main())
    timeout = events[0]
    assert timeout["type"] == "input_audio_buffer.timeout_triggered"
    assert timeout["audio_start_ms"] == 0
    assert 6000 <= timeout["audio_end_ms"] <= 6030
    assert events[1]["type"] == "input_audio_buffer.committed"
    assert events[1]["item_id"] == timeout["item_id"]


def test_push_to_talk_refuses_a_commit_under_100_ms(realtime) -> None:
    async def main() -> tuple[dict, dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            # Push-to-talk: no turn detection (the service's default has it), the client commits.
            ptt = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
            await connection.session.update(session=ptt)
            assert (await recv(connection))["session"]["audio"]["input"]["turn_detection"] is None
            await connection.input_audio_buffer.append(audio=pcm_to_b64(bytes(2 * 24 * 50)))
            await connection.input_audio_buffer.commit()
            short = await recv(connection)
            await connection.input_audio_buffer.append(audio=pcm_to_b64(bytes(2 * 24 * 60)))
            await connection.input_audio_buffer.commit()
            return short, await recv(connection)

    short, committed = asyncio.run(main())
    assert short["type"] == "error"
    assert short["error"]["code"] == "input_audio_buffer_commit_empty"
    assert (
        "Expected at least 100ms of audio, but buffer only has 50.00ms" in short["error"]["message"]
    )
    assert committed["type"] == "input_audio_buffer.committed"


def test_speech_over_an_answer_cancels_it_and_truncate_cuts_its_transcript() -> None:
    text = "Tell me a long story about the sea and the ships that sail on it every day"
    with start_server(port=0, lessons=[RealtimeLesson(delay=0.2)]) as server:

        async def main() -> tuple[list[dict], list[dict], dict]:
            async with client(server).realtime.connect(
                model="m", websocket_connection_options=NO_PROXY
            ) as connection:
                await recv(connection)
                await connection.session.update(session=audio_session(turn_detection=VAD))
                await recv(connection)
                await connection.conversation.item.create(item=user_item(text))
                await connection.response.create()
                answer = await until(connection, "response.output_audio.delta")
                await stream(connection, spoken(QUESTION, 0, 1000), chunk_ms=500)
                after = await until(connection, "response.done")
                added = next(e for e in answer if e["type"] == "response.output_item.added")
                item_id = added["item"]["id"]
                await connection.conversation.item.truncate(
                    item_id=item_id, content_index=0, audio_end_ms=150
                )
                rest = await until(connection, "conversation.item.truncated")
                await connection.conversation.item.retrieve(item_id=item_id)
                retrieved = await until(connection, "conversation.item.retrieved")
                return after, rest, retrieved[-1]

        after, rest, retrieved = asyncio.run(main())
    kinds = [e["type"] for e in after]
    assert "input_audio_buffer.speech_started" in kinds
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
    done = after[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "turn_detected"
    assert done["output"][0]["status"] == "incomplete"
    said = done["output"][0]["content"][0]["transcript"]
    full = "".join(echo_responder(text))  # what the answer would have said whole
    assert full.startswith(said) and len(said) < len(full)  # cut where the audio stopped
    truncated = rest[-1]
    assert truncated["audio_end_ms"] == 150 and truncated["content_index"] == 0
    heard = retrieved["item"]["content"][0]["transcript"]
    assert heard == synthesize(full).text_until(150)
    assert full.startswith(heard) and len(heard) <= len(said)


def test_seconds_of_audio_in_one_event_and_two_turns_in_it(realtime) -> None:
    # 7 s of speech and silence, one append: 450 KB of base64, over the course's 64 KiB.
    audio = np.concatenate([spoken(QUESTION, 500, 1500), spoken(QUESTION, 0, 1500)])

    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            await connection.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": VAD}}}
            )
            await recv(connection)
            await connection.input_audio_buffer.append(audio=pcm_to_b64(audio))
            events = await until(connection, "response.done")
            return events + await until(connection, "response.done")

    events = asyncio.run(main())
    committed = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    assert len(committed) == 2 and committed[0]["item_id"] != committed[1]["item_id"]
    first, second = (e["response"] for e in events if e["type"] == "response.done")
    # The second turn's speech started while the first turn's answer was on its way.
    assert first["status"] == "cancelled"
    assert first["status_details"]["reason"] == "turn_detected"
    assert second["status"] == "completed"
    assert second["output"][0]["content"][0]["transcript"].startswith("I heard ")


def test_other_routes_keep_the_courses_64_kib() -> None:
    big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 100_000})

    async def send(url: str) -> int | None:
        async with connect(url, proxy=None) as ws:
            await ws.send(big)
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        return ws.close_code

    with start_server(port=0, lessons=default_lessons(realtime={"delay": 0})) as server:
        assert asyncio.run(send(server.links.ws("/echo"))) == 1009
        realtime_code = asyncio.run(send_and_close(server.links.ws("/v1/realtime")))
    assert realtime_code == 1000


async def send_and_close(url: str) -> int | None:
    big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 100_000})
    async with connect(url, proxy=None, additional_headers={"Authorization": "Bearer k"}) as ws:
        await ws.recv()  # session.created
        await ws.send(big)
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == (
            "input_audio_buffer.cleared"
        )
    return ws.close_code


def test_without_a_speech_engine_answers_are_tones_and_the_log_says_so(
    realtime, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("WORKSHOP_TTS", "none")
    monkeypatch.setattr(session_module, "_silent_warned", False)

    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            await connection.session.update(session=audio_session())
            await recv(connection)
            await connection.conversation.item.create(item=user_item("Hello there"))
            await connection.response.create()
            return await until(connection, "response.done")

    with caplog.at_level(logging.WARNING, logger="workshop_lib.realtime"):
        events = asyncio.run(main())
    audio = np.concatenate(
        [b64_to_pcm(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"]
    )
    said = events[-1]["response"]["output"][0]["content"][0]["transcript"]
    assert said == "".join(echo_responder("Hello there"))
    assert np.array_equal(audio, tones(said).samples)
    assert any("No speech engine" in r.getMessage() for r in caplog.records)


def test_an_item_bigger_than_the_conversations_cap_is_refused(realtime) -> None:
    # The route now takes 15 MiB events; one item must still not hold more than the
    # conversation's 256 KiB (a session's memory stays bounded).
    audio = pcm_to_b64(bytes(48_000 * 3))  # 3 s: 192 KB of base64

    async def main() -> tuple[dict, dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            big = {"type": "input_audio", "audio": audio + audio}
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [big]}
            )
            refused = await recv(connection)
            small = {"type": "input_audio", "audio": audio}
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [small]}
            )
            return refused, await recv(connection)

    refused, added = asyncio.run(main())
    assert refused["type"] == "error" and refused["error"]["code"] == "item_too_large"
    assert added["type"] == "conversation.item.added"


def test_the_event_log_shows_an_answers_transcript_and_the_size_of_its_audio() -> None:
    from workshop_lib.realtime.widgets import EventLog

    log = EventLog()
    log.add({"type": "response.created", "event_id": "e1", "response": {"id": "r"}})
    where = {"event_id": "e", "response_id": "r", "item_id": "i", "content_index": 0}
    log.add({"type": "response.output_audio_transcript.delta", **where, "delta": "Hello "})
    log.add({"type": "response.output_audio.delta", **where, "delta": pcm_to_b64(bytes(9600))})
    log.add({"type": "response.output_audio_transcript.delta", **where, "delta": "there."})
    assert log.text("r") == "Hello there."
    drawn = log._log.value
    assert "&lt;9600 bytes of audio&gt;" in drawn and "AAAA" not in drawn


def test_a_microphone_streaming_20_ms_appends_in_real_time_is_never_rate_limited(realtime):
    """50 appends a second for 3 s, as a live microphone sends them (paced on the clock),
    with turn detection off so that nothing but the appends is at work: not one refused."""

    async def main() -> list[dict]:
        url = f"{realtime.links.ws('/v1/realtime')}?model=m"
        async with connect(url, proxy=None) as ws:

            async def event() -> dict:
                return strict(await asyncio.wait_for(ws.recv(), 10))

            await event()  # session.created
            update = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
            await ws.send(json.dumps({"type": "session.update", "session": update}))
            chunk = pcm_to_b64(np.zeros(480, np.int16))  # 20 ms at 24 kHz
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n in range(150):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))
            # The server answers in order: the error for an unknown item comes after all.
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "end"}))
            limited = []
            while True:
                received = await event()
                if received["type"] != "error":
                    continue
                if received["error"]["code"] != "rate_limit_exceeded":
                    return limited  # the unknown item's: every append was answered before
                limited.append(received)

    limited = asyncio.run(main())
    assert limited == [], f"{len(limited)} of 150 appends refused: {limited[0]}"
