"""workshop_lib.realtime.turns: server_vad turn detection on real speech (eSpeak NG).

Tolerances, from how the detector hears: WebRTC decides on 30 ms frames, so a moment is
known to a frame; the voice's first phoneme ramps up, so speech is heard up to two frames
after the first audible sample; and WebRTC's hangover calls a few frames after the voice
speech, so the end is heard up to 200 ms late (about 110 ms at aggressiveness 2, 170 ms at
0, on these sentences).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.sdk_events import SERVER_EVENT
from tests.speech_audio import scene
from workshop_lib.realtime.turns import (
    Committed,
    IdleTimeout,
    SpeechStarted,
    SpeechStopped,
    TurnDetector,
    event_fields,
    vad_settings,
)

ONE = "What is the weather like in Paris today?"
TWO = "And what should I wear tomorrow morning?"
# ms: the frame (and the resampler's filter, which rings ~1 ms ahead of an onset: a sound
# that starts just after a frame's end is heard in that frame), and the first phoneme's ramp
START_EARLY, START_LATE = 32, 60
END_EARLY, END_LATE = 30, 200  # ms: the frame, and WebRTC's hangover


def run(samples: np.ndarray, chunk: int = 480, **settings) -> list:
    """Feed ``samples`` in chunks of ``chunk`` samples; the events, each with the clock
    (ms of audio fed) at the moment it came out."""
    detector = TurnDetector(**settings)
    out = []
    for i in range(0, len(samples), chunk):
        out += [(detector.now_ms, e) for e in detector.feed(samples[i : i + chunk])]
    return out


def events(samples: np.ndarray, **settings) -> list:
    return [e for _, e in run(samples, **settings)]


def turns(found: list) -> list[tuple[SpeechStarted, SpeechStopped, Committed]]:
    starts = [e for e in found if isinstance(e, SpeechStarted)]
    stops = [e for e in found if isinstance(e, SpeechStopped)]
    commits = [e for e in found if isinstance(e, Committed)]
    assert len(starts) == len(stops) == len(commits), found
    return list(zip(starts, stops, commits, strict=True))


def assert_heard(turn, voiced: tuple[float, float], padding: int = 300, silence: int = 500):
    start, stop, commit = turn
    assert voiced[0] - START_EARLY <= start.speech_ms <= voiced[0] + START_LATE, (start, voiced)
    assert voiced[1] - END_EARLY <= stop.speech_end_ms <= voiced[1] + END_LATE, (stop, voiced)
    assert start.audio_start_ms == max(0, start.speech_ms - padding)
    assert stop.audio_end_ms == stop.speech_end_ms + silence
    assert (commit.audio_start_ms, commit.audio_end_ms) == (start.audio_start_ms, stop.audio_end_ms)
    assert (commit.start_sample, commit.end_sample) == (
        commit.audio_start_ms * 24,
        commit.audio_end_ms * 24,
    )


def test_a_sentence_in_silence_is_one_turn_where_the_voice_is() -> None:
    audio = scene(1000, ONE, 1500)
    found = run(audio.samples)
    kinds = [type(e) for _, e in found]
    assert kinds == [SpeechStarted, SpeechStopped, Committed]
    (turn,) = turns([e for _, e in found])
    assert_heard(turn, audio.voiced_ms[0])
    # Each event comes out once the audio holding its moment has arrived, not before, and
    # soon after: within the vote (300 ms) for a start, a frame or two past a stop.
    (at_start, start), (at_stop, stop), _ = found
    assert start.speech_ms <= at_start <= start.speech_ms + 300 + 60
    assert stop.audio_end_ms <= at_stop <= stop.audio_end_ms + 90


def test_two_sentences_with_a_long_pause_are_two_turns() -> None:
    audio = scene(800, ONE, 1500, TWO, 1500)
    found = turns(events(audio.samples))
    assert len(found) == 2
    for turn, voiced in zip(found, audio.voiced_ms, strict=True):
        assert_heard(turn, voiced)


def test_two_sentences_with_a_short_pause_are_one_turn() -> None:
    audio = scene(800, ONE, 300, TWO, 1500)
    (turn,) = turns(events(audio.samples))
    assert_heard(turn, (audio.voiced_ms[0][0], audio.voiced_ms[1][1]))


def test_the_silence_setting_decides_where_a_turn_ends() -> None:
    """The same 800 ms pause: a turn's end for silence_duration_ms=500, a breath for 1200."""
    audio = scene(800, ONE, 800, TWO, 2000)
    assert len(turns(events(audio.samples, silence_duration_ms=500))) == 2
    (turn,) = turns(events(audio.samples, silence_duration_ms=1200))
    assert_heard(turn, (audio.voiced_ms[0][0], audio.voiced_ms[1][1]), silence=1200)


def test_padding_moves_audio_start_ms_not_the_speech() -> None:
    audio = scene(1000, ONE, 1500)
    heard = {}
    for padding in (0, 300, 800, 2000):
        (turn,) = turns(events(audio.samples, prefix_padding_ms=padding))
        assert_heard(turn, audio.voiced_ms[0], padding=padding)
        heard[padding] = turn[0]
    assert len({start.speech_ms for start in heard.values()}) == 1
    assert heard[2000].audio_start_ms == 0  # not before the audio began


def test_padding_never_reaches_into_the_previous_turn() -> None:
    audio = scene(800, ONE, 1500, TWO, 1500)
    first, second = turns(events(audio.samples, prefix_padding_ms=2000))
    assert second[0].audio_start_ms == first[1].audio_end_ms
    assert second[2].start_sample == first[2].end_sample


CHUNKS = [1, 2, 7, 160, 480, 720, 4_800, 12_345, 10**9]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_any_chunking_gives_the_same_events(chunk: int) -> None:
    """The clock is the samples: sample by sample or all at once, faster than real time or
    not, the same events at the same moments."""
    audio = scene(800, ONE, 700, TWO, 1500)
    reference = events(audio.samples, chunk=480)
    assert len(reference) >= 3
    assert events(audio.samples, chunk=chunk) == reference


def test_random_chunks_and_bytes_give_the_same_events() -> None:
    audio = scene(800, ONE, 700, TWO, 1500)
    reference = events(audio.samples)
    rng = np.random.default_rng(7)
    for _ in range(3):
        detector, found, at = TurnDetector(), [], 0
        while at < len(audio.samples):
            step = int(rng.integers(1, 9_000))
            found += detector.feed(audio.samples[at : at + step].astype("<i2").tobytes())
            at += step
        assert found == reference


def test_idle_timeout_fires_after_the_configured_silence() -> None:
    found = events(np.zeros(24 * 3200, np.int16), idle_timeout_ms=1000)
    assert all(isinstance(e, IdleTimeout) for e in found) and len(found) == 3
    begin = 0
    for timeout in found:  # at the first frame past the timeout, then again from there
        assert timeout.audio_start_ms == begin
        assert 1000 <= timeout.audio_end_ms - begin < 1000 + 30
        begin = timeout.audio_end_ms


def test_speech_holds_off_the_idle_timeout_and_its_end_restarts_it() -> None:
    audio = scene(600, ONE, 2500)
    found = events(audio.samples, idle_timeout_ms=1000)
    assert [type(e) for e in found] == [SpeechStarted, SpeechStopped, Committed, IdleTimeout]
    stop, timeout = found[1], found[3]
    assert timeout.audio_start_ms == stop.audio_end_ms
    assert 1000 <= timeout.audio_end_ms - timeout.audio_start_ms < 1030


def test_the_session_stops_and_restarts_the_idle_timer() -> None:
    """While an answer plays the timer waits; it runs again from when the answer ended."""
    detector = TurnDetector(idle_timeout_ms=1000)
    detector.stop_idle()
    assert detector.feed(np.zeros(24 * 2000, np.int16)) == []
    detector.restart_idle(at_ms=2500)  # the answer's audio ends ahead of the input's clock
    (timeout,) = detector.feed(np.zeros(24 * 2000, np.int16))
    assert timeout == IdleTimeout(audio_start_ms=2500, audio_end_ms=3510)


def test_no_idle_timeout_unless_configured() -> None:
    assert events(np.zeros(24 * 5000, np.int16)) == []


def test_busy_room_needs_a_high_threshold_quiet_room_takes_any() -> None:
    """A busy room (white noise at -30 dBFS, a fan or a crowd's hiss) under the same sentence:
    at threshold 0.1 the noise itself is speech, so a turn starts in it and never ends; at
    0.9 (and the default 0.5) the turn is the sentence. In a quiet room both find it."""
    quiet = scene(1000, ONE, 1500)
    for threshold in (0.1, 0.5, 0.9):
        (turn,) = turns(events(quiet.samples, threshold=threshold))
        assert_heard(turn, quiet.voiced_ms[0])
    for seed in (0, 1):
        busy = scene(1000, ONE, 1500, noise_dbfs=-30, seed=seed)
        low = events(busy.samples, threshold=0.1)
        assert len(low) == 1 and isinstance(low[0], SpeechStarted)
        assert low[0].speech_ms < busy.voiced_ms[0][0] - 500  # in the noise, before the voice
        for threshold in (0.5, 0.9):
            (turn,) = turns(events(busy.samples, threshold=threshold))
            assert_heard(turn, busy.voiced_ms[0])


def test_clear_forgets_the_turn_in_progress() -> None:
    """The client commits (or clears) mid-speech: no speech_stopped for that turn; the clock
    runs on, and the voice still going is a new turn whose audio starts at the clear."""
    audio = scene(800, ONE, 1500, TWO, 1500)
    detector = TurnDetector()
    found = detector.feed(audio.samples[: 24 * 1800])
    assert [type(e) for e in found] == [SpeechStarted] and detector.in_speech
    detector.clear()
    assert not detector.in_speech
    rest = detector.feed(audio.samples[24 * 1800 :])
    first, second = turns(rest)
    assert first[0].audio_start_ms == 1800  # the padding stops at the clear
    assert_heard(first, (1800, audio.voiced_ms[0][1]), padding=0)
    assert_heard(second, audio.voiced_ms[1])


@pytest.mark.parametrize(
    "threshold, expected",
    [(0.0, (0, 0.5)), (0.25, (1, 0.5)), (0.5, (2, 0.5)), (0.625, (2, 0.7)), (1.0, (3, 0.9))],
)
def test_the_threshold_mapping(threshold: float, expected: tuple[int, float]) -> None:
    assert vad_settings(threshold) == expected


@pytest.mark.parametrize(
    "settings",
    [
        {"threshold": 1.5},
        {"threshold": -0.1},
        {"prefix_padding_ms": -1},
        {"silence_duration_ms": -5},
        {"idle_timeout_ms": 0},
    ],
)
def test_bad_settings_are_clear_errors(settings: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        TurnDetector(**settings)


def test_the_defaults_are_the_services() -> None:
    detector = TurnDetector()
    assert (detector.threshold, detector.prefix_padding_ms, detector.silence_duration_ms) == (
        0.5,
        300,
        500,
    )
    assert detector.idle_timeout_ms is None


def test_events_become_the_apis_events() -> None:
    """What the session will send, the detector's fields plus its ids, fits the SDK's types."""
    audio = scene(600, ONE, 2500)
    found = events(audio.samples, idle_timeout_ms=1000)
    assert {type(e) for e in found} == {SpeechStarted, SpeechStopped, Committed, IdleTimeout}
    for event in found:
        wire = {**event_fields(event), "event_id": "event_1", "item_id": "item_1"}
        parsed = SERVER_EVENT.validate_python(wire, strict=True)
        assert parsed.type == event.type
        for name in ("audio_start_ms", "audio_end_ms"):
            if hasattr(parsed, name):
                assert getattr(parsed, name) == getattr(event, name)


def test_configure_changes_settings_on_the_same_clock() -> None:
    """A session.update of turn_detection mid-stream: the new silence applies from then on,
    the clock and the turn in progress carry over; a bad update changes nothing."""
    audio = scene(800, ONE, 800, TWO, 2000)
    detector = TurnDetector(silence_duration_ms=1200)
    found = detector.feed(audio.samples[: 24 * 1500])
    with pytest.raises(ValueError, match="threshold"):
        detector.configure(threshold=2.0, silence_duration_ms=500)
    assert (detector.threshold, detector.silence_duration_ms) == (0.5, 1200)
    detector.configure(silence_duration_ms=500)
    found += detector.feed(audio.samples[24 * 1500 :])
    assert found == events(audio.samples, silence_duration_ms=500)
    assert len(turns(found)) == 2


def test_a_scene_written_as_wav_gives_the_same_turns(tmp_path) -> None:
    """The WAV a fake microphone would play holds the same audio as the scene."""
    from workshop_lib.realtime.audio import read_wav

    audio = scene(800, ONE, 1500, TWO, 1500)
    path = audio.write(tmp_path / "two-sentences.wav")
    assert events(read_wav(path)) == events(audio.samples)
    assert len(turns(events(read_wav(path)))) == 2
