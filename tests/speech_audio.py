"""Real speech for the voice tests, made at test time: sentences from the TTS engine with
silence (or a room's noise) between them, and where each sentence is audible.

    audio = scene(1000, "What is the weather like in Paris today?", 1500)
    audio.samples        # int16 at 24 kHz
    audio.voiced_ms      # [(start_ms, end_ms)] of each sentence's sound
    audio.write("x.wav") # a WAV for a fake microphone (--use-file-for-fake-audio-capture)

Nothing binary is committed: the engine makes the same samples from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from workshop_lib.realtime.audio import RATE, write_wav
from workshop_lib.realtime.speech import synthesize

AUDIBLE = 0.01 * 32767  # a sample louder than -40 dBFS is sound, not silence


@cache
def spoken(text: str) -> np.ndarray:
    """The engine's samples for ``text`` (cached: several tests say the same sentences)."""
    samples = synthesize(text).samples
    samples.setflags(write=False)
    return samples


@dataclass
class Scene:
    """Audio of sentences and pauses, and where the voice is in it."""

    samples: np.ndarray
    voiced_ms: list[tuple[float, float]] = field(default_factory=list)

    def write(self, path: str | Path) -> Path:
        """Write the scene as a 24 kHz mono WAV file; returns the path."""
        write_wav(path, self.samples)
        return Path(path)


def scene(*parts: str | int, noise_dbfs: float | None = None, seed: int = 0) -> Scene:
    """Join ``parts``: a string is spoken, an int is that many ms of silence. With
    ``noise_dbfs``, white noise at that level (RMS, in dB below full scale) lies under all of
    it, the same for the same ``seed``."""
    pieces, voiced, at = [], [], 0
    for part in parts:
        if isinstance(part, str):
            samples = spoken(part)
            loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > AUDIBLE)
            voiced.append(((at + loud[0]) * 1000 / RATE, (at + loud[-1] + 1) * 1000 / RATE))
        else:
            samples = np.zeros(part * RATE // 1000, np.int16)
        pieces.append(samples)
        at += len(samples)
    audio = np.concatenate(pieces).astype(np.float64)
    if noise_dbfs is not None:
        rms = 32767 * 10 ** (noise_dbfs / 20)
        audio += np.random.default_rng(seed).normal(0, rms, len(audio))
    return Scene(np.clip(np.round(audio), -32768, 32767).astype(np.int16), voiced)
