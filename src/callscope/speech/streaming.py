"""Audio that arrives while a call happens: telephone μ-law decoded, and each channel cut into
utterances at its pauses, with a partial utterance now and then while one goes on."""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from callscope.speech.media import SAMPLE_RATE

with warnings.catch_warnings():  # (it imports pkg_resources, which warns)
    warnings.simplefilter("ignore")
    import webrtcvad


def _mulaw_table() -> np.ndarray:
    """The 256 linear values of G.711 μ-law (ITU-T G.711, as telephone networks send it)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = ((((codes & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW = _mulaw_table()


def mulaw(data: bytes) -> np.ndarray:
    """16-bit samples of μ-law bytes (PCMU)."""
    return MULAW[np.frombuffer(data, dtype=np.uint8)]


def for_recognition(samples: np.ndarray, rate: int) -> np.ndarray:
    """16-bit samples at RATE as the recogniser reads them: float at 16 kHz."""
    audio = samples.astype(np.float32) / 32768.0
    if rate == SAMPLE_RATE:
        return audio
    return resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)


FRAME_S = 0.02  # the voice detector reads 20 ms at a time
PAUSE_S = 0.6  # a pause this long ends an utterance …
LONGEST_S = 15.0  # … and an utterance is cut here if the speaker goes on without one
PAD_S = 0.2  # kept before and after the speech
LEAST_SPEECH_S = 0.3  # voiced audio shorter than this is a click or a breath, not words
PARTIAL_EVERY_S = 1.0  # while someone speaks, what they have said so far is read this often
QUIET = 10 ** (-50 / 20) * 32768  # frames quieter than −50 dBFS are never speech


@dataclass(frozen=True)
class Utterance:
    """Speech of one channel: NUMBER counts the channel's utterances from 0; START_S is where
    it begins in the channel; SAMPLES are 16-bit at the stream's rate; FINAL once it ended."""

    number: int
    start_s: float
    samples: np.ndarray
    final: bool


class Utterances:
    """Cuts one channel's audio into utterances as it arrives (`add`); `end` gives the last."""

    def __init__(self, rate: int, *, position: int = 0, number: int = 0) -> None:
        if rate not in (8000, 16000):
            raise ValueError(f"the voice detector reads 8 or 16 kHz, not {rate} Hz")
        self.rate = rate
        self.frame = int(rate * FRAME_S)
        self.detector = webrtcvad.Vad(2)
        self.position = position  # samples read so far
        self.number = number
        self.pending = np.zeros(0, dtype=np.int16)  # (less than a frame)
        self.before: deque[np.ndarray] = deque(maxlen=int(PAD_S / FRAME_S))
        self.speech: list[np.ndarray] = []  # the frames of the utterance going on
        self.start = 0  # where it begins (samples)
        self.voiced = 0  # its voiced frames
        self.quiet = 0  # frames since its last voiced one
        self.partial_at = 0  # its length when it was last read partially (samples)

    def add(self, samples: np.ndarray) -> list[Utterance]:
        """Utterances that SAMPLES (16-bit, following what came before) end or extend."""
        data = np.concatenate([self.pending, samples]) if len(self.pending) else samples
        whole = len(data) - len(data) % self.frame
        self.pending = data[whole:].copy()
        found: list[Utterance] = []
        for at in range(0, whole, self.frame):
            found.extend(self._frame(data[at : at + self.frame]))
        partial = self._partial()
        return [*found, *([partial] if partial else [])]

    def end(self) -> list[Utterance]:
        """The utterance going on when the audio stops, if it holds speech."""
        last = self._cut() if self.speech else None
        return [last] if last else []

    def _frame(self, frame: np.ndarray) -> list[Utterance]:
        voiced = bool(np.sqrt(np.mean(frame.astype(np.float64) ** 2)) > QUIET) and (
            self.detector.is_speech(frame.astype("<i2").tobytes(), self.rate)
        )
        self.position += len(frame)
        if not self.speech:
            if voiced:
                self.start = self.position - len(frame) - sum(map(len, self.before))
                self.speech = [*self.before, frame]
                self.voiced, self.quiet, self.partial_at = 1, 0, 0
                self.before.clear()
            else:
                self.before.append(frame)
            return []
        self.speech.append(frame)
        self.voiced += voiced
        self.quiet = 0 if voiced else self.quiet + 1
        length = len(self.speech) * self.frame
        if self.quiet * FRAME_S >= PAUSE_S:
            # (the pause's end stays in front of the next utterance)
            keep = int(PAD_S / FRAME_S)
            tail = self.speech[len(self.speech) - self.quiet + keep :]
            self.speech = self.speech[: len(self.speech) - self.quiet + keep]
            cut = self._cut()
            self.before.extend(tail)
            return [cut] if cut else []
        if length >= LONGEST_S * self.rate:
            cut = self._cut()
            return [cut] if cut else []
        return []

    def _cut(self) -> Utterance | None:
        samples = np.concatenate(self.speech)
        speech = self.voiced * FRAME_S >= LEAST_SPEECH_S
        self.speech, self.voiced, self.quiet = [], 0, 0
        if not speech:
            return None
        self.number += 1
        return Utterance(self.number - 1, self.start / self.rate, samples, True)

    def _partial(self) -> Utterance | None:
        length = len(self.speech) * self.frame
        if (
            not self.speech
            or self.voiced * FRAME_S < LEAST_SPEECH_S
            or length - self.partial_at < PARTIAL_EVERY_S * self.rate
        ):
            return None
        self.partial_at = length
        return Utterance(self.number, self.start / self.rate, np.concatenate(self.speech), False)
