"""Turn detection as the Realtime API's ``server_vad`` does it, on the audio's own clock.

A :class:`TurnDetector` is fed the session's input audio (bytes of 24 kHz PCM16, in chunks of
any size) and returns what happened in it as data::

    detector = TurnDetector(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    for event in detector.feed(pcm):
        ...  # SpeechStarted, SpeechStopped, Committed, IdleTimeout

Time is the number of samples received, never the wall clock: a client that streams faster
than real time, or in other chunk sizes, gets the same events at the same ``*_ms``.

How it decides. Google's WebRTC voice-activity detector (``webrtcvad``) classifies each
30 ms frame of the audio, resampled to 16 kHz (one of its rates) by libsoxr, as voiced or not.

- **Speech starts** when the share of voiced frames among the last 10 (300 ms) reaches the
  *vote*; it started at the first voiced frame of those. ``audio_start_ms`` is that moment
  less ``prefix_padding_ms`` (never before the previous turn's end, nor 0).
- **Speech stops** after ``silence_duration_ms`` of frames none of which is voiced;
  ``audio_end_ms`` is the end of the last voiced frame plus ``silence_duration_ms``, as the
  service's includes the silence. The turn, ``[audio_start_ms, audio_end_ms]``, is committed.
- **Idle timeout**: ``idle_timeout_ms`` of audio with no speech since the timer started
  (the detector's start, the end of a turn, or :meth:`TurnDetector.restart_idle`, which the
  session calls when its answer's audio has played out) gives an :class:`IdleTimeout`, and
  the timer starts again from there; :meth:`TurnDetector.stop_idle` holds it while an answer
  is given.

WebRTC keeps calling a few frames speech after the voice ends (its hangover), so
``speech_end_ms`` is 100-200 ms after the last sound (more at low aggressiveness); and it
calls the first ~180 ms of a session speech while it learns the room's noise, so those
frames count as unvoiced.

``threshold`` (0..1, higher needs clearer speech, as the service's) maps onto two knobs:
its quarter picks WebRTC's aggressiveness (0-0.25: 0, 0.25-0.5: 1, 0.5-0.75: 2,
0.75-1: 3), and its place within the quarter the vote, from 50% to 90% of the frames.
The default 0.5 is aggressiveness 2 with a 50% vote.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import ClassVar, Final

import numpy as np
import soxr
import webrtcvad

from .audio import RATE, samples_to_ms, to_int16

__all__ = [
    "FRAME_MS",
    "Committed",
    "IdleTimeout",
    "SpeechStarted",
    "SpeechStopped",
    "TurnDetector",
    "TurnEvent",
    "event_fields",
    "vad_settings",
]

FRAME_MS: Final = 30
"""Each of WebRTC's decisions covers this much audio: the events' resolution."""

_VAD_RATE: Final = 16_000
_IN_FRAME: Final = RATE * FRAME_MS // 1000  # 720 samples at 24 kHz
_VAD_FRAME: Final = _VAD_RATE * FRAME_MS // 1000  # 480 samples at 16 kHz
_VOTE_FRAMES: Final = 10  # the start vote's window: 300 ms
# A fresh WebRTC VAD calls its first ~180 ms speech at aggressiveness 0-1 whatever it hears,
# while its noise estimate settles on the audio; those first frames count as unvoiced.
_SETTLE_FRAMES: Final = 6


@dataclass(frozen=True)
class SpeechStarted:
    """Speech was detected; the turn's audio starts at ``audio_start_ms`` (padding included)."""

    type: ClassVar[str] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    speech_ms: int  # where the voice itself started, without the padding


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended ``silence_duration_ms`` before ``audio_end_ms``."""

    type: ClassVar[str] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    speech_end_ms: int  # where the voice itself ended


@dataclass(frozen=True)
class Committed:
    """The turn's audio, to commit as the user's item: samples ``[start_sample, end_sample)``
    of all the audio received (24 kHz), ``[audio_start_ms, audio_end_ms]``."""

    type: ClassVar[str] = "input_audio_buffer.committed"
    audio_start_ms: int
    audio_end_ms: int
    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class IdleTimeout:
    """No speech from ``audio_start_ms`` (the timer's start) to ``audio_end_ms``."""

    type: ClassVar[str] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: int
    audio_end_ms: int


TurnEvent = SpeechStarted | SpeechStopped | Committed | IdleTimeout


def event_fields(event: TurnEvent) -> dict[str, int | str]:
    """The API event's ``type`` and its fields that the detector knows (the session adds
    ``event_id`` and ``item_id``): ``{"type": ..., "audio_start_ms": ...}``."""
    fields: dict[str, int | str] = {"type": event.type}
    if not isinstance(event, Committed):  # the API's committed event carries only ids
        fields.update(
            {k: v for k, v in asdict(event).items() if k in ("audio_start_ms", "audio_end_ms")}
        )
    return fields


def vad_settings(threshold: float) -> tuple[int, float]:
    """WebRTC's aggressiveness (0-3) and the start vote (0.5-0.9) for a ``threshold`` (0-1)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    mode = min(3, int(threshold * 4))
    within = threshold * 4 - mode  # 0..1 inside the quarter (1 only at threshold 1)
    return mode, round(0.5 + 0.4 * within, 6)


class TurnDetector:
    """``server_vad`` turn detection, deterministic, on the clock of the samples fed."""

    def __init__(
        self,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        idle_timeout_ms: int | None = None,
    ) -> None:
        self._vad = webrtcvad.Vad()
        self.configure(threshold, prefix_padding_ms, silence_duration_ms, idle_timeout_ms)
        self._resampler = soxr.ResampleStream(RATE, _VAD_RATE, 1, dtype="int16", quality="HQ")

        self._received = 0  # samples fed, at 24 kHz: the clock
        self._pending = np.zeros(0, np.int16)  # fed, not yet a whole 30 ms block
        self._resampled = np.zeros(0, np.int16)  # at 16 kHz, not yet a whole frame
        self._frames = 0  # frames decided
        self._recent: deque[bool] = deque(maxlen=_VOTE_FRAMES)
        self._in_speech = False
        self._last_voiced_frame = -1
        self._turn_floor = 0  # samples: a turn's audio starts no earlier
        self._turn_start = 0  # samples: the current turn's audio_start
        self._idle_from: int | None = 0  # samples; None: the timer is stopped

    def configure(
        self,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        idle_timeout_ms: int | None = None,
    ) -> None:
        """Take new settings (a ``session.update`` of ``turn_detection``), keeping the clock
        and a turn in progress; they apply from the next frame."""
        for name, value in (
            ("prefix_padding_ms", prefix_padding_ms),
            ("silence_duration_ms", silence_duration_ms),
        ):
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        if idle_timeout_ms is not None and idle_timeout_ms <= 0:
            raise ValueError(f"idle_timeout_ms must be positive or None, got {idle_timeout_ms}")
        self.mode, self.vote = vad_settings(threshold)
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.idle_timeout_ms = idle_timeout_ms
        self._vad.set_mode(self.mode)

    @property
    def now_ms(self) -> int:
        """Milliseconds of audio received so far (the clock the events are on)."""
        return samples_to_ms(self._received)

    @property
    def in_speech(self) -> bool:
        """Whether a turn has started and not yet stopped."""
        return self._in_speech

    def feed(self, pcm: bytes | np.ndarray) -> list[TurnEvent]:
        """Take the next audio (PCM16 LE bytes or int16 samples at 24 kHz); return the events
        it completes, in order."""
        samples = to_int16(pcm)
        self._received += len(samples)
        self._pending = np.concatenate((self._pending, samples))
        # The resampler gets whole 30 ms blocks, whatever the chunks: the same calls, the
        # same output, to the bit, however the audio was cut.
        blocks = len(self._pending) // _IN_FRAME
        if blocks:
            cut = blocks * _IN_FRAME
            out = [
                self._resampler.resample_chunk(self._pending[i : i + _IN_FRAME])
                for i in range(0, cut, _IN_FRAME)
            ]
            self._pending = self._pending[cut:]
            self._resampled = np.concatenate((self._resampled, *out))
        events: list[TurnEvent] = []
        while len(self._resampled) >= _VAD_FRAME:
            frame, self._resampled = (
                self._resampled[:_VAD_FRAME],
                self._resampled[_VAD_FRAME:],
            )
            voiced = self._vad.is_speech(frame.tobytes(), _VAD_RATE)
            events += self._decide(voiced and self._frames >= _SETTLE_FRAMES)
        return events

    def restart_idle(self, at_ms: int | None = None) -> None:
        """Start the idle timer from ``at_ms`` (the audio clock; now by default): the session
        calls this when its answer's audio has played out, as the service does."""
        self._idle_from = self._received if at_ms is None else at_ms * RATE // 1000

    def stop_idle(self) -> None:
        """Stop the idle timer (while an answer is being given) until :meth:`restart_idle`."""
        self._idle_from = None

    def clear(self) -> None:
        """Forget a turn in progress (the client cleared or committed the buffer itself):
        no :class:`SpeechStopped` for it; the clock runs on and the next turn starts after."""
        self._in_speech = False
        self._recent.clear()
        self._turn_floor = self._received

    def _decide(self, voiced: bool) -> list[TurnEvent]:
        index = self._frames
        self._frames += 1
        end = self._frames * _IN_FRAME  # samples: where this frame ends
        # A frame from before a clear belongs to no turn (the resampler lags the clock).
        voiced = voiced and end - _IN_FRAME >= self._turn_floor
        self._recent.append(voiced)
        if voiced:
            self._last_voiced_frame = index
        events: list[TurnEvent] = []
        if not self._in_speech:
            if voiced and sum(self._recent) >= self.vote * _VOTE_FRAMES:
                window_start = index - len(self._recent) + 1
                onset = window_start + list(self._recent).index(True)
                self._start_turn(onset, events)
            elif self._idle_from is not None and self.idle_timeout_ms is not None:
                due = self._idle_from + self.idle_timeout_ms * RATE // 1000
                if end >= due:
                    events.append(IdleTimeout(samples_to_ms(self._idle_from), samples_to_ms(end)))
                    self._idle_from = end
        else:
            silence = (index - self._last_voiced_frame) * _IN_FRAME
            if silence * 1000 >= self.silence_duration_ms * RATE:
                self._stop_turn(events)
        return events

    def _start_turn(self, onset_frame: int, events: list[TurnEvent]) -> None:
        onset = onset_frame * _IN_FRAME
        padding = self.prefix_padding_ms * RATE // 1000
        self._turn_start = max(self._turn_floor, onset - padding, 0)
        self._in_speech = True
        self._idle_from = None
        events.append(SpeechStarted(samples_to_ms(self._turn_start), samples_to_ms(onset)))

    def _stop_turn(self, events: list[TurnEvent]) -> None:
        speech_end = (self._last_voiced_frame + 1) * _IN_FRAME
        turn_end = speech_end + self.silence_duration_ms * RATE // 1000
        self._in_speech = False
        self._recent.clear()
        self._turn_floor = turn_end
        self._idle_from = turn_end
        events.append(SpeechStopped(samples_to_ms(turn_end), samples_to_ms(speech_end)))
        events.append(
            Committed(
                samples_to_ms(self._turn_start), samples_to_ms(turn_end), self._turn_start, turn_end
            )
        )
