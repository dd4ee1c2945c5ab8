"""Exercises of notebook 08 (voice): a player that truncates, push-to-talk, VAD settings.

from workshop_lib.checks.voice import q1, q2, q3, ____

Each check starts a server of its own with the course's local model and runs everything on
a loop of its own. For q1 and q2 the learner's client dials a small relay the check runs in
front of that server, which notes every event both ways and when: so the check knows what
was sent, in which order, and what the server said back, without trusting the answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..realtime.audio import RATE, b64_to_pcm, pcm_to_b64, samples_to_ms
from ..realtime.client import realtime_url
from ..realtime.server import RealtimeLesson
from ..realtime.speech import Speech, synthesize, tones
from ._base import CheckResult, Exercise, Failed, ____, _Placeholder, run_coroutine, scratch_server

__all__ = ["QUESTION", "Speaker", "____", "q1", "q2", "q3", "recording", "vad_turns"]

QUESTION = "Tell me a long story about the sea and the ships that sail on it every day"
"""q1's question: the local model repeats it, about six seconds of speech."""

# A limit high enough that no learner's client meets it: the exercises are about audio.
_LESSON = {"burst": 1000, "rate": 1000}


def _say(text: str) -> Speech:
    """Speech for ``text``, or tones where no engine is installed (the check still runs)."""
    try:
        return synthesize(text)
    except RuntimeError:
        return tones(text)


def _silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, np.int16)


# -- what the checks watch ------------------------------------------------------------------


@dataclass
class _Record:
    """One event through the relay: who sent it (``client`` or ``server``), when, what."""

    side: str
    at: float
    event: dict[str, Any]


@dataclass
class _Relay:
    """A WebSocket relay on a free port of 127.0.0.1, in front of ``upstream``, noting every
    event that goes through (run on the check's loop, with ``async with``)."""

    upstream: str
    records: list[_Record] = field(default_factory=list)
    url: str = ""
    _server: Any = None
    # Called with each record as it is noted, before it is passed on: what a check must see
    # at that very moment (a watcher that polls can miss it when the answer comes back fast).
    on_record: Callable[[_Record], None] | None = None

    async def __aenter__(self) -> _Relay:
        self._server = await serve(self._relay, "127.0.0.1", 0, max_size=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/realtime?model=workshop-local"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _relay(self, client: ServerConnection) -> None:
        async with connect(self.upstream, proxy=None, max_size=None) as server:

            async def pump(source: Any, sink: Any, side: str) -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for message in source:
                        with contextlib.suppress(ValueError):
                            record = _Record(side, time.monotonic(), json.loads(message))
                            self.records.append(record)
                            if self.on_record is not None:
                                self.on_record(record)
                        await sink.send(message)
                await sink.close()

            await asyncio.gather(pump(client, server, "client"), pump(server, client, "server"))

    def events(self, side: str, kind: str | None = None) -> list[_Record]:
        """The events ``side`` sent (of type ``kind``), in order."""
        return [
            r for r in self.records if r.side == side and (kind is None or r.event["type"] == kind)
        ]

    def errors(self) -> list[str]:
        """The server's error messages, in order."""
        return [r.event["error"]["message"] for r in self.events("server", "error")]


class Speaker:
    """A loudspeaker for q1: ``await speaker.play(samples)`` returns once the samples (int16
    at 24 kHz) have been heard, in real time, as a write to a sound card does. Cancel the
    task that plays to stop the sound at once: what was heard until then counts.

    Its clock is the sound card's: a piece given within :attr:`BUFFER` seconds of the end
    of the one before follows it without a gap (a late wake-up of the loop loses no time).
    """

    BUFFER = 0.05

    def __init__(self) -> None:
        self.started = asyncio.Event()  # the first sound came out
        self._heard = 0  # samples heard in plays that ended
        self._playing: tuple[float, int] | None = None  # (start, samples) of the play under way
        self._end = 0.0  # when the sound given so far ends, on the loop's clock
        self.played_past_truncate = False  # noted by the check

    async def play(self, samples: Any) -> None:
        """Play ``samples`` (an int16 array, or PCM16 bytes); return when they were heard."""
        n = len(samples) if not isinstance(samples, bytes | bytearray) else len(samples) // 2
        loop = asyncio.get_running_loop()
        if self._playing is not None:
            raise RuntimeError("the speaker is already playing: play one piece after another")
        now = loop.time()
        start = self._end if self._end >= now - self.BUFFER else now
        self._end = start + n / RATE
        self._playing = (start, n)
        self.started.set()
        try:
            await asyncio.sleep(max(0.0, self._end - loop.time()))
        finally:
            self._heard += self._part(start, n, loop.time())
            self._end = min(self._end, loop.time())  # a stop ends the sound now
            self._playing = None

    @staticmethod
    def _part(start: float, n: int, now: float) -> int:
        """Samples of a piece of ``n`` begun at ``start`` heard by ``now``."""
        return min(n, max(0, round((now - start) * RATE)))

    @property
    def playing(self) -> bool:
        """A play is under way."""
        return self._playing is not None

    def heard_ms(self) -> float:
        """Milliseconds of sound heard so far, the play under way included."""
        heard = self._heard
        if self._playing is not None:
            heard += self._part(*self._playing, asyncio.get_running_loop().time())
        return heard * 1000 / RATE


# -- q1: play, count, truncate --------------------------------------------------------------


class Truncate(Exercise):
    """q1: ``async def player(url, question, speaker, microphone)`` plays the spoken answer,
    and when the user talks over it stops and truncates the answer at what was heard."""

    answer_name = "player"
    hint_text = (
        "count what the speaker has played, not what you received: after each "
        "`await speaker.play(frame)`, add samples_to_ms(len(frame)) (a 24 kHz sample is 1/24 "
        "ms). When input_audio_buffer.speech_started arrives, cancel the playing task first, "
        "then send conversation.item.truncate with the answer's item_id, content_index 0 and "
        "audio_end_ms = the milliseconds played."
    )
    solution_file = "08_player.py"
    timeout_hint = (
        "it should return after conversation.item.truncated; if the server answered your "
        "truncate with an error instead, read it (the check shows it when it can)"
    )
    tolerance_ms = 100

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        with scratch_server(lessons=[RealtimeLesson(delay=0.05, **_LESSON)]) as server:
            wait = random.uniform(1.0, 2.0)  # of the answer heard before the user speaks
            relay, speaker, truncated_at = self._run_player(answer, realtime_url(server), wait)
        errors = relay.errors()
        sent = relay.events("client", "conversation.item.truncate")
        deltas = relay.events("server", "response.output_audio.delta")
        if not deltas:
            raise Failed(
                "no answer in audio came: keep the session.update with output_modalities "
                '["audio"] and the response.create'
                + (f" (the server said: {errors[0]})" if errors else "")
            )
        started = relay.events("server", "input_audio_buffer.speech_started")
        if not started:
            raise Failed("the user's speech was never heard: keep the microphone task running")
        if not sent:
            raise Failed(
                "you never sent conversation.item.truncate: when speech_started arrives, stop "
                "the playback and truncate the answer at what was played"
            )
        truncate = sent[0]
        item_id = deltas[0].event["item_id"]
        if truncate.event.get("item_id") != item_id:
            raise Failed(
                f"you truncated item {truncate.event.get('item_id')!r}, but the answer is "
                f"{item_id!r}: take item_id from the response.output_audio.delta events"
            )
        refused = [r for r in relay.events("server", "error") if r.at >= truncate.at]
        if refused:
            raise Failed(
                f"the server refused your truncate: {refused[0].event['error']['message']} "
                "(audio_end_ms is in milliseconds of audio played; a 24 kHz sample is 1/24 ms)"
            )
        said = truncate.event.get("audio_end_ms")
        heard = truncated_at if truncated_at is not None else speaker.heard_ms()
        received = sum(
            samples_to_ms(len(b64_to_pcm(r.event["delta"]))) for r in deltas if r.at <= truncate.at
        )
        if speaker.played_past_truncate:
            raise Failed(
                "the speaker was still playing when you sent the truncate: the user heard more "
                "than you told the server. Stop the sound first (cancel the task that plays), "
                "then truncate"
            )
        if not isinstance(said, int | float) or abs(said - heard) > self.tolerance_ms:
            why = (
                ": that is the audio you received, which arrives faster than it plays; count "
                "the milliseconds the speaker has played"
                if isinstance(said, int | float) and abs(said - received) <= self.tolerance_ms
                else ": count the milliseconds of each frame the speaker finished playing"
            )
            raise Failed(
                f"you truncated at {said!r} ms, but the user had heard {heard:.0f} ms of the "
                f"answer when you stopped it{why}"
            )
        if not relay.events("server", "conversation.item.truncated"):
            raise Failed(
                "the server never confirmed the truncate: wait for conversation.item.truncated"
            )
        return CheckResult(
            True,
            f"the user spoke {wait:.1f} s into the answer; you stopped at {said:.0f} ms of "
            f"{received} ms received (heard: {heard:.0f} ms), and the server cut the "
            "answer's transcript there",
        )

    def _run_player(
        self, answer: Callable[..., Any], upstream: str, wait: float
    ) -> tuple[_Relay, Speaker, float | None]:
        state: dict[str, Any] = {}

        async def scene() -> None:
            speaker = Speaker()
            state["speaker"] = speaker
            async with _Relay(upstream) as relay:
                state["relay"] = relay

                def note(record: _Record) -> None:
                    # What the speaker had played, and whether it still played, the moment
                    # the truncate went out.
                    is_truncate = record.event.get("type") == "conversation.item.truncate"
                    if record.side == "client" and is_truncate and "heard_at_truncate" not in state:
                        state["heard_at_truncate"] = speaker.heard_ms()
                        speaker.played_past_truncate = speaker.playing

                relay.on_record = note
                microphone = _microphone(speaker, wait)
                player = asyncio.ensure_future(answer(relay.url, QUESTION, speaker, microphone))
                # What the speaker had played when the truncate reached the relay.
                watch = asyncio.create_task(_when_truncated(relay, speaker, state, player))
                try:
                    await player
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise  # the check's own time ran out
                finally:
                    watch.cancel()
                # A player that returns at once after the truncate may leave its speaker
                # playing, and the instant the truncate went out can fall between two of
                # its frames: listen a little longer for sound after the truncate.
                if "heard_at_truncate" in state:
                    await asyncio.sleep(0.25)
                    more = speaker.heard_ms() - state["heard_at_truncate"]
                    speaker.played_past_truncate |= more > 20 or speaker.playing

        _run(self, scene(), 30, state)
        return state["relay"], state["speaker"], state.get("heard_at_truncate")


async def _when_truncated(
    relay: _Relay, speaker: Speaker, state: dict[str, Any], player: asyncio.Task[Any]
) -> None:
    """Stop the learner's player if the server refuses its truncate (it would wait for
    ``truncated`` forever)."""
    while not relay.events("client", "conversation.item.truncate"):
        await asyncio.sleep(0.002)
    sent = relay.events("client", "conversation.item.truncate")[0].at
    await asyncio.sleep(0.2)  # a speaker that starts again just after, too
    speaker.played_past_truncate |= speaker.playing
    for _ in range(500):
        if any(r.at >= sent for r in relay.events("server", "error")):
            await asyncio.sleep(0.3)  # its own time to see the error and return
            player.cancel()
            return
        await asyncio.sleep(0.01)


def _microphone(speaker: Speaker, wait: float) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """The user's microphone, always on: silence in real time in 100 ms chunks; ``wait``
    seconds after the answer starts playing, the user says "Wait, stop!"."""
    words = _say("Wait, stop! I have a question.").samples

    async def microphone(websocket: Any) -> None:
        chunk = RATE // 10

        async def send(samples: np.ndarray) -> None:
            event = {"type": "input_audio_buffer.append", "audio": pcm_to_b64(samples)}
            await websocket.send(json.dumps(event))

        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            loop = asyncio.get_running_loop()
            speaking_at: float | None = None
            voice = np.concatenate([words, _silence(3000)])
            at = 0
            while True:
                if speaking_at is None and speaker.started.is_set():
                    speaking_at = loop.time() + wait
                if speaking_at is not None and loop.time() >= speaking_at and at < len(voice):
                    await send(voice[at : at + chunk])
                    at += chunk
                else:
                    await send(_silence(100))
                await asyncio.sleep(0.1)

    return microphone


def _run(exercise: Exercise, coro: Coroutine[Any, Any, Any], timeout: float, state: dict) -> Any:
    """Run the check's scene on a loop of its own; a hang is a "not yet" that says what the
    server said last (an error often explains it)."""
    try:
        return run_coroutine(coro, timeout)
    except concurrent.futures.TimeoutError:
        relay: _Relay | None = state.get("relay")
        errors = relay.errors() if relay else []
        said = f" The server said: {errors[-1]}" if errors else ""
        raise Failed(
            f"{exercise.answer_name} did not finish within {timeout:g} s: "
            f"{exercise.timeout_hint}.{said}"
        ) from None


# -- q2: push-to-talk -----------------------------------------------------------------------


class PushToTalk(Exercise):
    """q2: ``async def push_to_talk(url, presses)``: each press of the button is a recording
    (int16 at 24 kHz); commit each that is long enough, ask for an answer, return them all."""

    answer_name = "push_to_talk"
    hint_text = (
        "the service refuses a commit of less than 100 ms: skip a press shorter than that "
        '(its audio is cleared at the next press). For the others send {"type": '
        '"input_audio_buffer.commit"} and then {"type": "response.create"}: a commit asks '
        "nothing by itself, and a response asked before the commit answers without the press."
    )
    solution_file = "08_push_to_talk.py"
    timeout_hint = (
        "after the commit, send a response.create and wait for its response.done (a commit "
        "alone starts no answer)"
    )

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        tap = random.randint(30, 90)
        presses = [
            np.concatenate([_silence(200), _say("What is the weather like in Paris?").samples]),
            _silence(tap),  # a tap on the button: nothing said
            np.concatenate([_say("And in Tokyo?").samples, _silence(random.randint(100, 400))]),
        ]
        state: dict[str, Any] = {}

        async def scene() -> Any:
            async with _Relay(state["upstream"]) as relay:
                state["relay"] = relay
                return await answer(relay.url, presses)

        with scratch_server(lessons=[RealtimeLesson(delay=0, **_LESSON)]) as server:
            state["upstream"] = realtime_url(server)
            got = _run(self, scene(), 20, state)
        relay: _Relay = state["relay"]
        short = [m for m in relay.errors() if "buffer too small" in m]
        if short:
            raise Failed(
                f"the server refused a commit: {short[0]} The {tap} ms press was a tap: "
                "commit only a press of at least 100 ms, and skip the others"
            )
        client = relay.events("client")
        commits = 0
        for record in client:
            kind = record.event["type"]
            if kind == "input_audio_buffer.commit":
                commits += 1
            elif kind == "response.create" and commits == 0:
                raise Failed(
                    "you asked for a response before committing the press: the model answered "
                    "without it. Commit first, then send response.create"
                )
            elif kind == "response.create":
                commits = 0
        turns = [r for r in relay.events("server", "input_audio_buffer.committed")]
        if len(turns) != 2:
            raise Failed(f"{len(turns)} presses were committed; the two long ones should be")
        if relay.errors():
            raise Failed(f"the server answered an event with an error: {relay.errors()[0]}")
        expected = [
            f"I heard {samples_to_ms(len(p)) / 1000:.1f} seconds of speech."
            for p in (presses[0], presses[2])
        ]
        if got != expected:
            raise Failed(
                f"you returned {got!r}: return what each answer said (its transcript, or its "
                f"text if you asked for text): {expected!r}"
            )
        return CheckResult(
            True, f"two presses committed and answered, the {tap} ms tap skipped: {got}"
        )


# -- q3: turn detection's settings ----------------------------------------------------------

# q3's recording: a sentence with a hesitation in it, a pause, another sentence.
HESITATION_MS = 700
PAUSE_MS = 1500
_PARTS = ("What is the weather like", "in Paris today?", "And what should I wear?")


@cache
def recording() -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """q3's recording (int16 at 24 kHz) and where each of its three pieces of speech lies,
    in ms: "What is the weather like ... in Paris today?  And what should I wear?"."""
    pieces, spans, at = [_silence(500)], [], 500
    for part, after in zip(_PARTS, (HESITATION_MS, PAUSE_MS, 2500), strict=True):
        samples = _say(part).samples
        pieces += [samples, _silence(after)]
        spans.append((at, at + samples_to_ms(len(samples))))
        at += samples_to_ms(len(samples)) + after
    audio = np.concatenate(pieces)
    audio.setflags(write=False)
    return audio, tuple(spans)


async def vad_turns(url: str, settings: dict[str, Any], audio: np.ndarray) -> list[dict]:
    """Stream ``audio`` through server VAD with ``settings``; the VAD events and errors."""
    async with connect(url, proxy=None, max_size=None) as websocket:
        await websocket.recv()  # session.created
        vad = {**settings, "create_response": False}
        update = {"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
        await websocket.send(json.dumps({"type": "session.update", "session": update}))
        reply = json.loads(await websocket.recv())
        if reply["type"] == "error":
            return [reply]
        chunk = RATE // 2
        for start in range(0, len(audio), chunk):
            event = {
                "type": "input_audio_buffer.append",
                "audio": pcm_to_b64(audio[start : start + chunk]),
            }
            await websocket.send(json.dumps(event))
        # The session answers in order: an error for this comes after every VAD event above.
        end = {"type": "conversation.item.retrieve", "event_id": "end", "item_id": "none"}
        await websocket.send(json.dumps(end))
        events = []
        async for message in websocket:
            event = json.loads(message)
            if event["type"] == "error" and event["error"].get("event_id") == "end":
                return events
            if event["type"].startswith("input_audio_buffer.") or event["type"] == "error":
                events.append(event)
    return events


class VadSettings(Exercise):
    """q3: a ``turn_detection`` dict that splits the recording into its two sentences."""

    hint_text = (
        "silence_duration_ms is how long a silence must last to end a turn. The hesitation "
        f"inside the first sentence lasts {HESITATION_MS} ms, the pause between the sentences "
        f"{PAUSE_MS} ms: pick a value between them (WebRTC hears a sound's tail for 100-200 "
        "ms more, so not too close to either)."
    )
    solution_file = "08_vad_settings.py"

    def _check(self, answer: Any) -> CheckResult:
        if not isinstance(answer, dict):
            raise Failed(f"give q3.check a dict of turn_detection settings, not {answer!r}")
        if any(isinstance(v, _Placeholder) for v in answer.values()):
            return CheckResult(
                False, "replace every ____ with your code, run that cell, then run this check again"
            )
        if answer.get("type") != "server_vad":
            raise Failed('keep "type": "server_vad": the server decides where turns end')
        audio, spans = recording()
        with scratch_server(lessons=[RealtimeLesson(delay=0, **_LESSON)]) as server:
            events = run_coroutine(vad_turns(realtime_url(server), answer, audio), 30)
        errors = [e["error"]["message"] for e in events if e["type"] == "error"]
        if errors:
            raise Failed(f"the server refused these settings: {errors[0]}")
        stops = [
            e["audio_end_ms"] for e in events if e["type"] == "input_audio_buffer.speech_stopped"
        ]
        commits = [e for e in events if e["type"] == "input_audio_buffer.committed"]
        (_, first_end), (second_start, second_end), (third_start, _) = spans
        said = f"{len(commits)} turn{'s' * (len(commits) != 1)}"
        if any(first_end < stop < second_start + 100 for stop in stops):
            raise Failed(
                f"{said}: a turn ended in the {HESITATION_MS} ms hesitation inside the first "
                f"sentence (speech_stopped at {stops[0]} ms). silence_duration_ms "
                f"({answer.get('silence_duration_ms', 500)}) must be longer than that pause"
            )
        if len(commits) < 2:
            raise Failed(
                f"{said}: the {PAUSE_MS} ms pause between the sentences did not end the first "
                f"turn. silence_duration_ms ({answer.get('silence_duration_ms', 500)}) must be "
                "shorter than that pause"
            )
        if len(commits) > 2 or not (second_end < stops[0] < third_start + 100):
            raise Failed(f"{said}, ending at {stops} ms: want two, one per sentence")
        return CheckResult(
            True,
            f"two turns, one per sentence: the first ended at {stops[0]} ms (speech_stopped), "
            f"the second at {stops[1]} ms",
        )


q1 = Truncate("q1")
q2 = PushToTalk("q2")
q3 = VadSettings("q3")
