"""Audio as the Realtime API carries it: PCM16 samples, base64 text, G.711, WAV files.

The API's own format, ``audio/pcm``, is 16-bit signed little-endian PCM, mono, at 24 kHz,
sent as base64 inside JSON events. ``audio/pcmu`` and ``audio/pcma`` are G.711 µ-law and
A-law at 8 kHz (telephony). Inside the course, audio is a numpy ``int16`` array at 24 kHz;
:func:`decode` and :func:`encode` convert from and to the wire for each format.

Resampling goes through libsoxr (the ``soxr`` package), a well-kept, band-limited resampler,
not hand-written interpolation, which would alias. The G.711 codecs are the reference
algorithm (Sun's g711.c, the one CPython's ``audioop`` implements), vectorized with numpy;
the tests compare them with ``audioop`` for every one of the 65,536 samples and 256 codes.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from os import PathLike
from typing import Final, Literal

import numpy as np
import soxr

__all__ = [
    "FORMATS",
    "RATE",
    "AudioFormat",
    "AudioFormatError",
    "alaw_decode",
    "alaw_encode",
    "b64_to_pcm",
    "decode",
    "encode",
    "ms_to_samples",
    "pcm_to_b64",
    "read_wav",
    "resample",
    "samples_to_ms",
    "to_int16",
    "ulaw_decode",
    "ulaw_encode",
    "wav_bytes",
    "write_wav",
]

RATE: Final = 24_000
"""Samples per second of ``audio/pcm``, the API's only PCM rate."""

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]

FORMATS: Final[dict[str, int]] = {"audio/pcm": RATE, "audio/pcmu": 8_000, "audio/pcma": 8_000}
"""Each format the API names, with its sample rate."""

_LE_INT16: Final = np.dtype("<i2")


class AudioFormatError(ValueError):
    """Bytes or text that are not audio in the format they claim to be."""


def to_int16(samples: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
    """The samples as a 1-D ``int16`` array, from PCM16 LE bytes, int16 or floats in [-1, 1]."""
    if isinstance(samples, bytes | bytearray | memoryview):
        data = bytes(samples)
        if len(data) % 2:
            raise AudioFormatError(
                f"PCM16 has 2 bytes a sample; {len(data)} bytes is not a whole number of samples."
            )
        return np.frombuffer(data, dtype=_LE_INT16).astype(np.int16)
    array = np.asarray(samples)
    if array.ndim != 1:
        raise AudioFormatError(f"Expected mono audio (a 1-D array), got shape {array.shape}.")
    if array.dtype == np.int16:
        return array
    if np.issubdtype(array.dtype, np.floating):
        return np.round(np.clip(array, -1.0, 1.0) * 32767).astype(np.int16)
    raise AudioFormatError(f"Expected int16 samples or floats in [-1, 1], got {array.dtype}.")


def _le_bytes(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype=np.int16).astype(_LE_INT16, copy=False).tobytes()


def b64_to_pcm(text: str) -> np.ndarray:
    """Decode an ``input_audio_buffer.append``'s ``audio`` (base64 PCM16 LE) to int16 samples."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"Not base64: {exc}") from None
    return to_int16(data)


def pcm_to_b64(samples: np.ndarray | bytes) -> str:
    """Encode int16 samples (or PCM16 LE bytes) as the base64 text an audio event carries."""
    return base64.b64encode(_le_bytes(to_int16(samples))).decode("ascii")


def samples_to_ms(samples: int, rate: int = RATE) -> int:
    """Whole milliseconds that ``samples`` samples last at ``rate`` (rounded down, as the API's
    ``audio_start_ms`` / ``audio_end_ms`` are whole numbers)."""
    return samples * 1000 // rate


def ms_to_samples(ms: float, rate: int = RATE) -> int:
    """The number of samples in ``ms`` milliseconds at ``rate`` (rounded to the nearest)."""
    return round(ms * rate / 1000)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling of int16 samples (libsoxr, high quality)."""
    samples = to_int16(samples)
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()
    return soxr.resample(samples, from_rate, to_rate, quality="HQ")


# G.711, as in the reference g711.c: µ-law codes 14-bit magnitudes with a bias of 0x21 and
# clips at 8159; A-law codes 13-bit magnitudes. Both store the code inverted (µ-law all its
# bits, A-law every other one).
_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159


def _segment(magnitude: np.ndarray, first_end: int) -> np.ndarray:
    """The G.711 segment of each magnitude (8: past the last one): its octave above
    ``first_end``, the first segment's largest magnitude."""
    ends = ((first_end + 1) << np.arange(8)) - 1
    return np.searchsorted(ends, magnitude, side="left")


def ulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 µ-law codes (one byte a sample) of int16 samples."""
    x = to_int16(samples).astype(np.int32) >> 2  # µ-law works on 14 bits
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(mag, 0x3F)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """int16 samples of G.711 µ-law codes."""
    u = ~np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> bytes:
    """G.711 A-law codes (one byte a sample) of int16 samples."""
    x = to_int16(samples).astype(np.int32) >> 3  # A-law works on 13 bits
    positive = x >= 0
    mask = np.where(positive, 0xD5, 0x55)
    mag = np.where(positive, x, -x - 1)
    seg = _segment(mag, 0x1F)
    shift = np.where(seg < 2, 1, seg)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> shift) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """int16 samples of G.711 A-law codes."""
    a = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << (seg - 1)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def decode(data: bytes, fmt: str = "audio/pcm") -> np.ndarray:
    """Wire bytes in ``fmt`` (one of :data:`FORMATS`) as int16 samples at 24 kHz."""
    if fmt == "audio/pcm":
        return to_int16(data)
    if fmt == "audio/pcmu":
        return resample(ulaw_decode(data), FORMATS[fmt], RATE)
    if fmt == "audio/pcma":
        return resample(alaw_decode(data), FORMATS[fmt], RATE)
    raise AudioFormatError(f"Unknown audio format {fmt!r}: expected one of {sorted(FORMATS)}.")


def encode(samples: np.ndarray, fmt: str = "audio/pcm") -> bytes:
    """int16 samples at 24 kHz as wire bytes in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "audio/pcm":
        return _le_bytes(to_int16(samples))
    if fmt == "audio/pcmu":
        return ulaw_encode(resample(samples, RATE, FORMATS[fmt]))
    if fmt == "audio/pcma":
        return alaw_encode(resample(samples, RATE, FORMATS[fmt]))
    raise AudioFormatError(f"Unknown audio format {fmt!r}: expected one of {sorted(FORMATS)}.")


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """A mono 16-bit WAV file's bytes (``IPython.display.Audio(data=...)`` plays them)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(_le_bytes(to_int16(samples)))
    return out.getvalue()


def write_wav(path: str | PathLike[str], samples: np.ndarray, rate: int = RATE) -> None:
    """Write int16 samples to a mono 16-bit WAV file."""
    with open(path, "wb") as f:
        f.write(wav_bytes(samples, rate))


def read_wav(source: str | PathLike[str] | bytes, rate: int | None = RATE) -> np.ndarray:
    """A 16-bit PCM WAV file (a path or its bytes) as mono int16 samples.

    Stereo is mixed down; with ``rate`` (24 kHz by default) the samples are resampled to it,
    with ``rate=None`` they keep the file's own rate.
    """
    try:
        with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as wav:
            width, channels, file_rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"Not a PCM WAV file: {exc}") from None
    if width != 2:
        raise AudioFormatError(
            f"Expected 16-bit samples, the file has {8 * width}-bit ones "
            f"(convert it first, e.g. `sox in.wav -b 16 out.wav`)."
        )
    samples = to_int16(frames)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return samples if rate is None else resample(samples, file_rate, rate)
