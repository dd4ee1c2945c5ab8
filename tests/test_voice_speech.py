"""workshop_lib.realtime.speech: real speech from eSpeak NG, with word timings."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workshop_lib.realtime.audio import RATE
from workshop_lib.realtime.speech import (
    SpeechUnavailable,
    speech_engine,
    synthesize,
    tones,
)

SENTENCE = "What is the weather like in Paris today?"


def _rms_dbfs(samples: np.ndarray) -> float:
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if len(samples) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32767)


def _band_share(samples: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(power[(hz >= low) & (hz <= high)].sum() / power.sum())


def test_the_pip_wheel_engine_is_the_one_used() -> None:
    """The course depends on espeakng-loader: a pip install speaks, with no system package."""
    assert speech_engine() == "espeakng-loader"


def test_a_sentence_is_speech_at_24khz_with_its_words_timed() -> None:
    speech = synthesize(SENTENCE)
    assert speech.samples.dtype == np.int16
    # 8 words at 175 words a minute: about 2 s (eSpeak's pace, with a sentence-end pause)
    assert 1500 < speech.duration_ms < 3000
    assert _rms_dbfs(speech.samples) > -30  # loud enough to be heard, not silence
    assert _band_share(speech.samples, 80, 4000) > 0.8  # a voice's band, not a tone's line
    assert speech.timed
    assert [w.text for w in speech.words] == SENTENCE.rstrip("?").split()
    starts = [w.start_ms for w in speech.words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[0] < 50 and starts[-1] < speech.duration_ms - 200
    for word in speech.words:  # each word's timing points at sound, not at silence
        at = word.start_sample
        assert _rms_dbfs(speech.samples[at : at + RATE // 10]) > -35, word


def test_word_timings_follow_the_audio() -> None:
    """A pause in the text is a gap in the audio, and the timings jump over it: the second
    sentence's first word starts after a silent stretch that ends near its timing."""
    speech = synthesize("Stop. Go on now.")
    go = next(w for w in speech.words if w.text == "Go")
    stop = speech.words[0]
    assert stop.text == "Stop"
    before = speech.samples[: go.start_sample - go.start_sample % 240]
    frames = before.reshape(-1, 240)  # 10 ms frames
    quiet = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) < 0.003 * 32767
    assert quiet[-15:].sum() >= 10  # silence in the 150 ms before "Go"
    assert not quiet[:10].all()  # and "Stop" sounded at the start


def test_text_until_keeps_the_words_heard() -> None:
    speech = synthesize(SENTENCE)
    paris = next(w for w in speech.words if w.text == "Paris")
    assert speech.text_until(0) == ""
    assert speech.text_until(paris.start_ms + 1) == "What is the weather like in Paris"
    assert speech.text_until(paris.start_ms - 1) == "What is the weather like in"
    assert speech.text_until(speech.duration_ms) == SENTENCE.rstrip("?")


def _alike(one, two) -> bool:
    """The same words, each within 25 ms, and lengths within 40 ms: eSpeak shifts a call's
    timing by about 10 ms now and then."""
    return (
        [w.text for w in one.words] == [w.text for w in two.words]
        and all(
            abs(a.start_ms - b.start_ms) <= 25 for a, b in zip(one.words, two.words, strict=True)
        )
        and abs(one.duration_ms - two.duration_ms) <= 40
    )


def test_rate_and_repeatability() -> None:
    """Words a minute set the pace; the same text gives the same words and nearly the same
    audio (eSpeak's wave generator carries a little state from one call to the next)."""
    slow, fast = synthesize(SENTENCE, wpm=120), synthesize(SENTENCE, wpm=350)
    assert fast.duration_ms < 0.6 * slow.duration_ms
    assert _alike(synthesize(SENTENCE), synthesize(SENTENCE))


def test_threads_get_their_own_speech() -> None:
    """The library's state is global; the lock keeps concurrent calls apart."""
    texts = ["One two three.", SENTENCE, "Hello there.", "Good morning, everyone."] * 3
    alone = {t: synthesize(t) for t in set(texts)}
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(synthesize, texts))
    for text, speech in zip(texts, together, strict=True):
        assert speech.text == text
        assert _alike(speech, alone[text])


def test_other_voices_and_a_bad_one() -> None:
    french = synthesize("Bonjour tout le monde.", voice="fr")
    assert french.duration_ms > 500 and french.words[0].text == "Bonjour"
    with pytest.raises(ValueError, match="no voice 'xx-nope'"):
        synthesize("Hello.", voice="xx-nope")
    assert synthesize("Hello.").duration_ms > 300  # the engine is still fine afterwards


def test_empty_text_is_no_audio() -> None:
    speech = synthesize("   ")
    assert len(speech.samples) == 0 and speech.words == () and speech.text_until(100) == ""


def test_no_engine_says_so_in_one_line_with_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("WORKSHOP_TTS", "none")
    assert speech_engine() == "none"
    with pytest.raises(SpeechUnavailable) as caught:
        synthesize("Hello.")
    message = str(caught.value)
    assert "\n" not in message and "pip install espeakng-loader" in message
    with pytest.raises(ValueError, match="Unknown speech engine"):
        speech_engine("festival")


def test_tones_stand_in_with_exact_timings() -> None:
    stand_in = tones("three short words")
    assert stand_in.engine == "tones"
    assert [w.start_ms for w in stand_in.words] == [0, 250, 500]
    assert stand_in.duration_ms == 750
    assert stand_in.text_until(260) == "three short"
    assert _band_share(stand_in.samples, 400, 480) > 0.9  # a 440 Hz beep


def _speak_in_a_fresh_process(engine: str) -> dict:
    """One libespeak-ng per process (both libraries share a soname): a child speaks."""
    code = (
        "import json; from workshop_lib.realtime.speech import synthesize, speech_engine; "
        f"s = synthesize({SENTENCE!r}); "
        "print(json.dumps({'engine': speech_engine(), 'ms': s.duration_ms, "
        "'timed': s.timed, 'words': [[w.text, w.start_ms] for w in s.words]}))"
    )
    env = {**os.environ, "WORKSHOP_TTS": engine}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_system_library_is_the_second_choice() -> None:
    if ctypes.util.find_library("espeak-ng") is None:
        pytest.skip("no system libespeak-ng on this machine (Debian: apt-get install espeak-ng)")
    child = _speak_in_a_fresh_process("libespeak-ng")
    wheel = synthesize(SENTENCE)
    assert child["engine"] == "libespeak-ng" and child["timed"]
    assert [w for w, _ in child["words"]] == [w.text for w in wheel.words]
    assert child["ms"] == pytest.approx(wheel.duration_ms, rel=0.2)


def test_the_command_line_program_is_the_last_resort() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng program on this machine (Debian: apt-get install espeak-ng)")
    speech = synthesize(SENTENCE, engine="espeak-ng")
    assert speech.engine == "espeak-ng" and not speech.timed
    assert speech.duration_ms == pytest.approx(synthesize(SENTENCE).duration_ms, rel=0.3)
    assert _rms_dbfs(speech.samples) > -30
    assert [w.text for w in speech.words] == SENTENCE.split()  # spread, in order
    assert speech.text_until(speech.duration_ms) == SENTENCE
