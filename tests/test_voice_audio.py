"""workshop_lib.realtime.audio: the Realtime API's audio formats, against references."""

from __future__ import annotations

import base64
import sys
import warnings

import numpy as np
import pytest

from tests.speech_audio import spoken
from workshop_lib.realtime import audio
from workshop_lib.realtime.audio import AudioFormatError

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.fixture(scope="module")
def audioop():
    """CPython's own G.711 (Sun's g711.c), the reference; gone from the stdlib in 3.13."""
    if sys.version_info >= (3, 13):
        pytest.importorskip("audioop")  # audioop-lts, where installed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


def test_ulaw_matches_the_reference_for_every_sample_and_code(audioop) -> None:
    pcm = ALL_SAMPLES.astype("<i2").tobytes()
    assert audio.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(pcm, 2)
    reference = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), "<i2")
    np.testing.assert_array_equal(audio.ulaw_decode(ALL_CODES), reference)


def test_alaw_matches_the_reference_for_every_sample_and_code(audioop) -> None:
    pcm = ALL_SAMPLES.astype("<i2").tobytes()
    assert audio.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(pcm, 2)
    reference = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), "<i2")
    np.testing.assert_array_equal(audio.alaw_decode(ALL_CODES), reference)


def test_g711_known_codes() -> None:
    """Values from the G.711 tables: silence and full scale."""
    assert audio.ulaw_encode(np.array([0, 32767, -32768], np.int16)) == bytes([0xFF, 0x80, 0x00])
    assert audio.alaw_encode(np.array([0, 32767, -32768], np.int16)) == bytes([0xD5, 0xAA, 0x2A])


def test_base64_round_trip_is_little_endian_pcm16() -> None:
    samples = np.array([0, 1, -1, 256, -32768, 32767], np.int16)
    text = audio.pcm_to_b64(samples)
    assert base64.b64decode(text) == bytes.fromhex("0000 0100 ffff 0001 0080 ff7f")
    np.testing.assert_array_equal(audio.b64_to_pcm(text), samples)


@pytest.mark.parametrize(
    "text, says",
    [
        ("AAE", "base64"),
        ("not base64!", "base64"),
        (base64.b64encode(b"\0\0\0").decode(), "2 bytes"),
    ],
)
def test_bad_audio_text_is_a_clear_error(text: str, says: str) -> None:
    with pytest.raises(AudioFormatError, match=says):
        audio.b64_to_pcm(text)


def test_durations_on_the_24khz_clock() -> None:
    assert audio.samples_to_ms(24_000) == 1000
    assert audio.samples_to_ms(23_999) == 999  # whole ms, rounded down like the API's
    assert audio.samples_to_ms(8_000, rate=8_000) == 1000
    assert audio.ms_to_samples(100) == 2400
    assert audio.ms_to_samples(20, rate=16_000) == 320


def _tone(hz: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(0.5 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_resampling_keeps_the_pitch_and_length() -> None:
    down = audio.resample(_tone(1000, 24_000), 24_000, 8_000)
    assert len(down) == 4000
    assert abs(_peak_hz(down, 8_000) - 1000) < 5
    up = audio.resample(down, 8_000, 24_000)
    assert len(up) == 12_000
    assert abs(_peak_hz(up, 24_000) - 1000) < 5


def test_resampling_filters_what_the_new_rate_cannot_hold() -> None:
    """A 5 kHz tone cannot exist at 8 kHz (Nyquist 4 kHz): a band-limited resampler removes
    it; naive decimation (every third sample) folds it down to 3 kHz at full strength."""
    tone = _tone(5000, 24_000)
    assert np.abs(tone[::3]).max() > 10_000  # the alias naive code would keep
    assert np.abs(audio.resample(tone, 24_000, 8_000)[100:-100]).max() < 500


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_telephony_formats_carry_speech(fmt: str) -> None:
    """Speech through G.711 at 8 kHz and back: a third of the bytes, still close to the original
    in the telephone band (the correlation of the two waveforms)."""
    speech = spoken("Testing the telephone line.")
    wire = audio.encode(speech, fmt)
    assert len(wire) == pytest.approx(len(speech) / 3, abs=2)
    back = audio.decode(wire, fmt)
    assert len(back) == pytest.approx(len(speech), abs=6)
    n = min(len(back), len(speech))
    band = audio.resample(audio.resample(speech, 24_000, 8_000), 8_000, 24_000)[:n]
    assert np.corrcoef(band.astype(float), back[:n].astype(float))[0, 1] > 0.99


def test_pcm_format_is_the_samples_themselves() -> None:
    speech = spoken("Testing the telephone line.")
    assert audio.encode(speech, "audio/pcm") == speech.astype("<i2").tobytes()
    np.testing.assert_array_equal(audio.decode(audio.encode(speech)), speech)
    with pytest.raises(AudioFormatError, match="audio/pcm"):
        audio.decode(b"\0\0", "pcm16")


def test_wav_round_trip(tmp_path) -> None:
    speech = spoken("Testing the telephone line.")
    path = tmp_path / "speech.wav"
    audio.write_wav(path, speech)
    np.testing.assert_array_equal(audio.read_wav(path), speech)
    at_16k = audio.read_wav(audio.wav_bytes(speech, rate=16_000), rate=None)
    np.testing.assert_array_equal(at_16k, speech)  # the file's own rate, untouched


def test_read_wav_mixes_stereo_down_and_resamples(tmp_path) -> None:
    import wave

    left, right = _tone(440, 48_000), np.zeros(24_000, np.int16)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(48_000)
        f.writeframes(np.column_stack((left, right)).astype("<i2").tobytes())
    mono = audio.read_wav(path)
    assert len(mono) == 12_000
    assert abs(_peak_hz(mono, 24_000) - 440) < 5
    assert 0.2 * 32767 < np.abs(mono).max() < 0.3 * 32767  # the mean of the two channels


def test_read_wav_refuses_what_it_cannot_read(tmp_path) -> None:
    with pytest.raises(AudioFormatError, match="WAV"):
        audio.read_wav(b"RIFF not really")
    import wave

    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(1)
        f.setframerate(8000)
        f.writeframes(bytes(100))
    with pytest.raises(AudioFormatError, match="16-bit"):
        audio.read_wav(path)


def test_floats_and_odd_shapes() -> None:
    np.testing.assert_array_equal(
        audio.to_int16(np.array([0.0, 1.0, -1.0, 2.0])), np.array([0, 32767, -32767, 32767])
    )
    with pytest.raises(AudioFormatError, match="mono"):
        audio.to_int16(np.zeros((2, 2), np.int16))
