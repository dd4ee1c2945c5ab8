"""A new Realtime session has the service's defaults: answers in audio with a transcript,
server VAD on; a text client asks for text, as it must on the service. Lesson 05's own cells,
run in a kernel, get their answers in text after asking, and in audio before.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai.types.realtime.realtime_audio_input_turn_detection import ServerVad
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

from tests.kernel import NOTEBOOKS, Kernel, assert_ok, code_cells
from tests.sdk_events import NO_PROXY, SERVER_EVENT, ask_for_text, recv, strict, until, user_item
from tests.test_realtime_voice import QUESTION, client, spoken, stream
from workshop_lib.realtime.audio import pcm_to_b64
from workshop_lib.realtime.client import text_session, user_message
from workshop_lib.realtime.model import local_model
from workshop_lib.realtime.session import Counts, RealtimeSession

PCM_24K = {"type": "audio/pcm", "rate": 24_000}


def test_a_new_session_has_the_services_defaults(realtime) -> None:
    async def main() -> dict:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            return await recv(connection)  # parsed whole by the SDK's strict types

    created = asyncio.run(main())
    session = SERVER_EVENT.validate_python(created).session
    assert isinstance(session, RealtimeSessionCreateRequest)  # not a transcription session
    # Audio out, with its transcript beside it: the SDK documents ["audio"] as the default.
    assert session.output_modalities == ["audio"]
    audio_in = session.audio.input
    # Server VAD on, with the settings its docstrings give as defaults.
    vad = audio_in.turn_detection
    assert isinstance(vad, ServerVad)
    assert (vad.threshold, vad.prefix_padding_ms, vad.silence_duration_ms) == (0.5, 300, 500)
    assert vad.create_response is True and vad.interrupt_response is True
    assert vad.idle_timeout_ms is None
    assert audio_in.transcription is None  # off until asked for, as the service's
    assert audio_in.noise_reduction is None
    assert created["session"]["audio"]["input"]["format"] == PCM_24K
    assert created["session"]["audio"]["output"]["format"] == PCM_24K
    assert session.audio.output.voice == "alloy" and session.audio.output.speed == 1.0


def test_the_default_session_hears_speech_and_answers_in_audio(realtime) -> None:
    """No session.update at all: speech streamed in is a turn, and the answer is spoken."""

    async def main() -> list[dict]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            await stream(connection, spoken(QUESTION))
            return await until(connection, "response.done")

    events = asyncio.run(main())
    kinds = [e["type"] for e in events]
    assert kinds[:6] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",  # no transcription.failed: transcription is off
        "response.created",
    ]
    assert "response.output_audio.delta" in kinds
    assert "response.output_text.delta" not in kinds
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output_modalities"] == ["audio"]
    (part,) = done["output"][0]["content"]
    assert part["type"] == "output_audio" and part["transcript"].startswith("I heard ")


def test_a_text_client_asks_for_text_and_gets_no_audio(realtime) -> None:
    async def main() -> tuple[list[dict], list[dict]]:
        async with client(realtime).realtime.connect(
            model="m", websocket_connection_options=NO_PROXY
        ) as connection:
            await recv(connection)
            # Forgot to ask: audio, and the words only in the transcript.
            await connection.conversation.item.create(item=user_item("hello there"))
            await connection.response.create()
            spoken_answer = await until(connection, "response.done")
            updated = await ask_for_text(connection)
            assert updated["session"]["output_modalities"] == ["text"]
            # Turn detection is still on (the text lessons never append audio).
            assert updated["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            await connection.conversation.item.create(item=user_item("hello there"))
            await connection.response.create()
            return spoken_answer, await until(connection, "rate_limits.updated")

    spoken_answer, text_answer = asyncio.run(main())
    spoken_kinds = {e["type"] for e in spoken_answer}
    assert "response.output_audio.delta" in spoken_kinds
    assert "response.output_audio_transcript.delta" in spoken_kinds
    assert "response.output_text.delta" not in spoken_kinds
    text_kinds = [e["type"] for e in text_answer]
    assert "response.output_text.delta" in text_kinds
    assert not [k for k in text_kinds if "audio" in k]  # nothing spoken, no turn detected
    said = spoken_answer[-1]["response"]["output"][0]["content"][0]["transcript"]
    written = text_answer[-2]["response"]["output"][0]["content"][0]["text"]
    assert said == written  # the same words, spoken or written
    assert realtime.lesson("realtime").counts.spoken == 1


def test_turn_detection_waits_for_the_first_audio() -> None:
    """On by default, a detector costs ~50 KB a session: a text session never makes one; the
    first audio does, and an idle timer (which runs from the update) makes one at once."""
    sent: list[dict] = []

    async def send(event: dict) -> None:
        sent.append(strict(json.dumps(event, ensure_ascii=False)))

    async def main() -> list[bool]:
        seen = []
        with ThreadPoolExecutor(1) as pool:
            text = RealtimeSession(send, local_model, pool, Counts(), delay=0)
            await text.open()
            for event in (text_session(), user_message("hi"), {"type": "response.create"}):
                await text.handle(json.dumps(event))
            assert text.response is not None and text.response.task is not None
            await text.response.task
            seen.append(text.detector is None)
            silence = {"type": "input_audio_buffer.append", "audio": pcm_to_b64(bytes(4800))}
            await text.handle(json.dumps(silence))
            seen.append(text.detector is not None)

            idle = RealtimeSession(send, local_model, pool, Counts(), delay=0)
            vad = {"type": "server_vad", "idle_timeout_ms": 6000}
            update = {"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
            await idle.handle(json.dumps({"type": "session.update", "session": update}))
            seen.append(idle.detector is not None and idle.detector.idle_timeout_ms == 6000)
        return seen

    assert asyncio.run(main()) == [True, True, True]
    # The silence was heard and said nothing, as on the service.
    assert sent[-2]["type"] == "rate_limits.updated" and sent[-1]["type"] == "session.updated"


def test_lesson_05s_cells_get_audio_until_they_ask_for_text(tmp_path: Path) -> None:
    """Lesson 05 from its first cell through the SDK's: the answer before the session.update
    is audio, every answer after it is text (the raw client's and the SDK's)."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    cells = code_cells(notebooks / "05-realtime-api.ipynb")
    last = next(i for i, cell in enumerate(cells) if "azure_client(server" in cell)
    env = dict.fromkeys(("WORKSHOP_SERVER", "WORKSHOP_TOKEN", "JUPYTERHUB_SERVICE_PREFIX"))
    with Kernel(notebooks, env) as kernel:
        for cell in cells[: last + 1]:
            assert_ok(kernel.run(cell, timeout=120))
        probe = kernel.run(
            "import json as _json\n"
            "def _kinds(events):\n"
            "    return [e['type'] for _, d, e in events if d == '↓']\n"
            "print(_json.dumps({'forgot': [e['type'] for e in received],\n"
            "    'raw': _kinds(log.events), 'sdk': _kinds(sdk_log.events)}))"
        )
        assert_ok(probe)
        assert_ok(kernel.run("server.stop()"))
    kinds = json.loads(probe.printed)
    assert "response.output_audio.delta" in kinds["forgot"]
    assert "response.output_text.delta" not in kinds["forgot"]
    for name in ("raw", "sdk"):
        assert "session.updated" in kinds[name], name
        assert kinds[name].count("response.output_text.delta") > 1, name
        assert not [k for k in kinds[name] if k.startswith("response.output_audio")], name
