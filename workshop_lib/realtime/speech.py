"""Real speech, synthesized on the learner's machine: text to PCM16 at 24 kHz, word by word.

The engine is eSpeak NG (formant synthesis: robotic, but real speech, in 100+ languages,
hundreds of times faster than real time on one core, and small). Why it:

- It installs with pip everywhere the course runs: the ``espeakng-loader`` wheel carries
  ``libespeak-ng`` and its data for Linux, macOS and Windows (x86-64 and arm64), 10 MB.
  Neural engines (Piper, Kokoro, Silero) sound better but need a model download at run
  time and far more CPU per second of speech; the course's server answers many sessions.
- Called as a library (through ``ctypes``, as ``espeakng-loader`` intends), it reports
  where each word starts in the audio, which the server needs to stream the transcript
  beside the audio and to cut it where a listener interrupted (``conversation.item.truncate``).

Engines, in the order tried (``WORKSHOP_TTS`` names one of them to use it alone):

``espeakng-loader``  libespeak-ng from the pip wheel, with word timings.
``libespeak-ng``     the system's library (Debian's ``libespeak-ng1``, Homebrew's), word timings.
``espeak-ng``        the command-line program, no word timings (the words are spread over the
                     audio in proportion to their length).
``none``             :func:`synthesize` raises :class:`SpeechUnavailable`, whose message is the
                     fix; :func:`tones` still gives audio (a beep a word) with exact timings.

The same text gives the same words and nearly the same samples: eSpeak's wave generator
carries a little state from call to call, which moves a call's timings by ~10 ms now and then.

eSpeak NG is GPL-3.0-or-later; the course only loads it at run time, as a separate package.
libespeak-ng keeps global state, so calls into it are serialized by a lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Final

import numpy as np

from .audio import RATE, read_wav, resample, samples_to_ms, wav_bytes

__all__ = [
    "ENGINES",
    "Speech",
    "SpeechUnavailable",
    "Word",
    "speech_engine",
    "synthesize",
    "tones",
]

ENGINES: Final = ("espeakng-loader", "libespeak-ng", "espeak-ng")
"""The engines :func:`synthesize` tries, in order."""

_FIX: Final = (
    "No speech engine: `pip install espeakng-loader` (or install eSpeak NG, "
    "e.g. `apt-get install espeak-ng`); until then answers are tones beside their transcript."
)


class SpeechUnavailable(RuntimeError):
    """No speech engine is installed (or the one asked for is not); the message says the fix."""

    def __init__(self, message: str = _FIX) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Word:
    """One word of the text and where its sound starts."""

    text: str
    start_char: int  # index of its first character in the text
    start_sample: int  # at 24 kHz

    @property
    def end_char(self) -> int:
        """Index just past its last character."""
        return self.start_char + len(self.text)

    @property
    def start_ms(self) -> int:
        """Milliseconds into the audio where the word starts."""
        return samples_to_ms(self.start_sample)


@dataclass(frozen=True)
class Speech:
    """Synthesized speech: int16 samples at 24 kHz, the text, and its words' timings."""

    text: str
    samples: np.ndarray
    words: tuple[Word, ...]
    engine: str
    timed: bool  # True: the engine timed the words; False: spread by their length

    @property
    def duration_ms(self) -> int:
        """Length of the audio in whole milliseconds."""
        return samples_to_ms(len(self.samples))

    def text_until(self, ms: float) -> str:
        """The text heard by ``ms`` milliseconds into the audio: every word whose sound had
        started, with what stands between them (what a truncated item's transcript keeps)."""
        heard = [w for w in self.words if w.start_sample < ms * RATE / 1000]
        return self.text[: heard[-1].end_char] if heard else ""

    def wav(self) -> bytes:
        """The audio as a WAV file's bytes (``IPython.display.Audio(data=speech.wav())``)."""
        return wav_bytes(self.samples)


# libespeak-ng through ctypes: speak_lib.h's declarations that the synthesis needs.
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000  # without it, missing data makes the library exit()
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_EVENT_LIST_TERMINATED: Final = 0
_EVENT_WORD: Final = 1
_RATE, _PITCH = 1, 3  # espeak_PARAMETER


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters
        ("length", ctypes.c_int),  # in characters
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),  # at the engine's rate
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Library:
    """libespeak-ng, initialized once for the process, in synchronous mode."""

    def __init__(self, name: str, lib_path: str, data_path: str | None) -> None:
        self.name = name
        self._lib = ctypes.CDLL(lib_path)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        self._lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        self._lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        self._lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        path = data_path.encode() if data_path else None
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise OSError(f"{name}: espeak_Initialize failed (data at {data_path or 'default'})")
        self.rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []
        self._callback = _Callback(self._on_audio)  # kept: the library holds only a pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: ctypes.Array, count: int, events: ctypes.Array) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD:
                self._events.append((event.text_position - 1, event.length, event.sample))
            i += 1
        return 0  # go on

    def speak(self, text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, list]:
        """Samples at :attr:`rate` and (char index, length, sample) of each word."""
        data = text.encode() + b"\0"
        self._chunks, self._events = [], []
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"{self.name} has no voice {voice!r} (try 'en-us', 'en', 'fr', 'de')")
        self._lib.espeak_SetParameter(_RATE, wpm, 0)
        self._lib.espeak_SetParameter(_PITCH, pitch, 0)
        status = self._lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"{self.name}: espeak_Synth failed with status {status}")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples.astype(np.int16, copy=False), self._events


_lock = threading.Lock()  # libespeak-ng's state is global: one synthesis at a time
_libraries: dict[str, _Library | None] = {}


def _library(name: str) -> _Library | None:
    """The named library engine, loaded once; None where it is not installed."""
    if name not in _libraries:
        # Both carry the soname libespeak-ng.so.1: once one is loaded, the dynamic linker
        # hands it out for the other too (with the wrong data path), so a process uses one.
        if any(lib is not None for lib in _libraries.values()):
            return None
        try:
            if name == "espeakng-loader":
                import espeakng_loader

                lib = _Library(
                    name, espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
                )
            else:
                found = ctypes.util.find_library("espeak-ng")
                lib = _Library(name, found, None) if found else None
        except (ImportError, OSError, RuntimeError):
            lib = None
        _libraries[name] = lib
    return _libraries[name]


def _available(name: str) -> bool:
    if name == "espeak-ng":
        return shutil.which("espeak-ng") is not None
    return _library(name) is not None


def speech_engine(prefer: str | None = None) -> str:
    """The engine :func:`synthesize` will use: one of :data:`ENGINES`, or ``"none"``.

    ``prefer`` (else the ``WORKSHOP_TTS`` environment variable) names one engine to use
    alone, ``"none"`` to use none, or ``"auto"`` (the default) to try them in order.
    """
    choice = prefer or os.environ.get("WORKSHOP_TTS") or "auto"
    if choice == "none":
        return "none"
    if choice != "auto" and choice not in ENGINES:
        raise ValueError(f"Unknown speech engine {choice!r}: expected auto, none or {ENGINES}")
    for name in ENGINES if choice == "auto" else (choice,):
        with _lock:
            if _available(name):
                return name
    return "none"


def _spread_words(text: str, n_samples: int) -> tuple[Word, ...]:
    """Words spaced over the audio in proportion to their characters (an estimate)."""
    spans, pos = [], 0
    for token in text.split():
        start = text.index(token, pos)
        spans.append((token, start))
        pos = start + len(token)
    total = sum(len(t) for t, _ in spans) or 1
    words, done = [], 0
    for token, start in spans:
        words.append(Word(token, start, n_samples * done // total))
        done += len(token)
    return tuple(words)


def synthesize(
    text: str, voice: str = "en-us", wpm: int = 175, pitch: int = 50, engine: str | None = None
) -> Speech:
    """Speak ``text``: samples at 24 kHz (resampled from the engine's 22,050 Hz) and word timings.

    ``wpm`` is words a minute (80..450), ``pitch`` 0..99. Raises :class:`SpeechUnavailable`
    where no engine is installed (:func:`tones` is the stand-in).
    """
    name = speech_engine(engine)
    if name == "none":
        choice = engine or os.environ.get("WORKSHOP_TTS") or "auto"
        if choice in ("auto", "none"):
            raise SpeechUnavailable()
        raise SpeechUnavailable(f"The speech engine {choice!r} is not installed. {_FIX}")
    if not text.strip():
        return Speech(text, np.zeros(0, np.int16), (), name, True)
    if name == "espeak-ng":
        samples = _speak_command(text, voice, wpm, pitch)
        return Speech(text, samples, _spread_words(text, len(samples)), name, False)
    lib = _library(name)
    assert lib is not None  # speech_engine() found it
    with _lock:
        raw, events = lib.speak(text, voice, wpm, pitch)
    samples = resample(raw, lib.rate, RATE)
    words = tuple(
        Word(text[start : start + length], start, round(sample * RATE / lib.rate))
        for start, length, sample in events
    )
    return Speech(text, samples, words, name, True)


def _speak_command(text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    program = shutil.which("espeak-ng")
    if program is None:
        raise SpeechUnavailable()
    done = subprocess.run(
        [program, "-v", voice, "-s", str(wpm), "-p", str(pitch), "-b", "1", "--stdin", "--stdout"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip()
        raise ValueError(f"espeak-ng failed: {message or f'exit status {done.returncode}'}")
    return read_wav(done.stdout)


def tones(text: str, word_ms: int = 180, gap_ms: int = 70, hz: float = 440.0) -> Speech:
    """A stand-in for speech where no engine is installed: one soft beep a word, timed exactly."""
    word_len, gap_len = word_ms * RATE // 1000, gap_ms * RATE // 1000
    t = np.arange(word_len) / RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps: no clicks
    beep = (0.3 * np.sin(2 * np.pi * hz * t) * fade * 32767).astype(np.int16)
    silence = np.zeros(gap_len, np.int16)
    words = _spread_words(text, 1)  # for the spans; the timings are set below
    timed = tuple(Word(w.text, w.start_char, i * (word_len + gap_len)) for i, w in enumerate(words))
    parts = [np.concatenate((beep, silence)) for _ in timed]
    samples = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    return Speech(text, samples, timed, "tones", True)
