"""Channels → speakers: bleed removal between channels, and the agent of each session."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from callscope.measures.segments import Word
from callscope.speech import crosstalk
from callscope.speech.asr import (
    SAMPLE_RATE,
    ChannelProgress,
    RecognisedWord,
    Transcriber,
    apply_vocabulary,
)

ECHO_DELAY_S = (-0.05, 0.4)  # an echo arrives up to this much later (channels out of step)
ECHO_SHARE = 0.85  # an echo is this much of its channel's sound, at least
ECHO_MIN_SPAN_S = 0.4  # the stretch compared, at least
BLOCK_S = 0.032  # the block of the spectral comparison
INSEPARABLE_LEAK_DB = -6.0  # the other side this loud in a channel cannot be fully told apart
LEAK_RESIDUE_DB = -10.0  # a word whose sound crosstalk removal took this much of was a leak


@dataclass(frozen=True)
class ChannelWords:
    """The words recognised on one audio channel and the speaker that channel carries."""

    channel: int
    speaker: str
    words: Sequence[RecognisedWord]
    leak_db: float | None = None  # the loudest other side's voice removed from it, if any


class Channels:
    """The audio of the channels, to tell an echo or bleed from a voice of its own."""

    def __init__(self, audio: np.ndarray, rate: int) -> None:
        self.audio, self.rate = audio, rate

    def _span(self, start: float, end: float) -> tuple[int, int]:
        lo = max(0, int(start * self.rate))
        return lo, min(self.audio.shape[1], max(int(end * self.rate), lo + 1))

    def level(self, channel: int, start: float, end: float) -> float:
        """The RMS level (dBFS) of CHANNEL between two times."""
        lo, hi = self._span(start, end)
        chunk = self.audio[channel, lo:hi]
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
        return 20 * math.log10(rms) if rms > 0 else -120.0

    def echo_share(self, quiet: int, loud: int, start: float, end: float) -> float:
        """The share (0–1) of QUIET's sound between two times that is LOUD's sound arriving a
        moment later, filtered and scaled (an echo or bleed of it): LOUD is aligned to QUIET
        at the delay where they match best, and the share is QUIET's power that LOUD predicts,
        frequency by frequency (the coherence of the two, weighted by QUIET's spectrum), over
        the blocks where LOUD is the louder. A voice of its own on QUIET is what LOUD cannot
        predict."""
        centre, half = (start + end) / 2, max(end - start, ECHO_MIN_SPAN_S) / 2
        lo, hi = self._span(centre - half, centre + half)
        first, last = (round(d * self.rate) for d in ECHO_DELAY_S)
        own = self.audio[quiet, lo:hi].astype(np.float64)
        src_lo, src_hi = max(0, lo - last), min(self.audio.shape[1], hi - first)
        source = self.audio[loud, src_lo:src_hi].astype(np.float64)
        if len(own) < 4 * (block := round(BLOCK_S * self.rate)) or len(source) < len(own):
            return 0.0
        # the delay: where the cross-correlation of the two (spectrally whitened) peaks
        size = 1 << (len(own) + len(source)).bit_length()
        cross = np.fft.rfft(source, size) * np.conj(np.fft.rfft(own, size))
        lags = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)[: len(source) - len(own) + 1]
        shift = int(np.argmax(lags))
        aligned = source[shift : shift + len(own)]
        window = np.hanning(block)
        starts = range(0, len(own) - block + 1, block // 2)
        x = np.fft.rfft(np.stack([aligned[i : i + block] * window for i in starts]), axis=1)
        y = np.fft.rfft(np.stack([own[i : i + block] * window for i in starts]), axis=1)
        # only where LOUD is the louder: a word's times may stretch over QUIET's own speech
        louder = np.sum(np.abs(x) ** 2, axis=1) > np.sum(np.abs(y) ** 2, axis=1)
        if np.count_nonzero(louder) < 4:
            return 0.0
        x, y = x[louder], y[louder]
        sxy = np.abs(np.mean(x * np.conj(y), axis=0)) ** 2
        sxx, syy = np.mean(np.abs(x) ** 2, axis=0), np.mean(np.abs(y) ** 2, axis=0)
        coherence = sxy / np.maximum(sxx * syy, 1e-30)
        return float(np.sum(coherence * syy) / max(float(np.sum(syy)), 1e-30))


def recognise(
    transcriber: Transcriber,
    audio: np.ndarray,
    roles: Mapping[int, str],
    language: str,
    terms: Sequence[str] = (),
    progress: ChannelProgress | None = None,
) -> list[ChannelWords]:
    """The words of each channel of AUDIO (16 kHz) that ROLES names, in channel order, with
    the queue's TERMS spelt as the queue spells them; PROGRESS(index in that order, fraction).

    The other side's voice leaking into a channel (crosstalk) is taken out of its sound before
    recognition (`crosstalk.remove`), and a word heard in what little of a leak is left (a word
    whose sound the removal took almost all of) is dropped."""
    order = sorted(roles)
    clean, leaks = crosstalk.remove(audio[order], SAMPLE_RATE)
    recognised = transcriber.transcribe_channels(list(clean), language, progress)
    leaked_into = {leak.into for leak in leaks}

    def own(index: int, word: RecognisedWord) -> bool:
        """Not a word heard in what the removal left of a leak."""
        span = (int(word.start * SAMPLE_RATE), int(word.end * SAMPLE_RATE) + 1)
        return (
            index not in leaked_into
            or crosstalk.kept_db(audio[order[index]], clean[index], *span) > LEAK_RESIDUE_DB
        )

    return [
        ChannelWords(
            c,
            roles[c],
            apply_vocabulary([w for w in words if own(i, w)], terms),
            max((leak.level_db for leak in leaks if leak.into == i), default=None),
        )
        for i, (c, words) in enumerate(zip(order, recognised, strict=True))
    ]


def remove_bleed(
    channels: Sequence[ChannelWords], audio: Channels
) -> list[tuple[ChannelWords, RecognisedWord]]:
    """Keep each word only where it was spoken.

    A word is echo or bleed, and dropped, when another channel is louder over its time and
    the word's own channel there is mostly that channel's sound arriving a moment later (what
    an echo is, however the recogniser heard it); a word spoken by a voice of its own is kept,
    even under the other side's speech and on a channel far quieter than the other.
    """
    return [
        (own, word)
        for own in channels
        for word in own.words
        if not any(
            _is_echo(audio, own.channel, other.channel, word)
            for other in channels
            if other.channel != own.channel
        )
    ]


def _is_echo(audio: Channels, own: int, other: int, word: RecognisedWord) -> bool:
    return (
        audio.level(other, word.start, word.end) > audio.level(own, word.start, word.end)
        and audio.echo_share(own, other, word.start, word.end) >= ECHO_SHARE
    )


def attribute(channels: Sequence[ChannelWords], audio: np.ndarray, rate: int) -> list[Word]:
    """Words with their speaker, echo and bleed removed, in time order."""
    kept = (
        remove_bleed(channels, Channels(audio, rate))
        if len(channels) > 1
        else [(c, w) for c in channels for w in c.words]
    )
    words = [Word(c.speaker, w.start, w.end, w.text, w.confidence) for c, w in kept]
    return sorted(words, key=lambda w: (w.start, w.end, w.speaker))


@dataclass(frozen=True)
class SessionSpan:
    """A voice session as offsets (seconds) from the start of the recording."""

    agent_id: int
    start: float
    end: float | None


def session_spans(
    sessions: Sequence[tuple[int, datetime, datetime | None]], recording_start: datetime
) -> list[SessionSpan]:
    """Sessions (agent id, start, end) as offsets into the recording."""
    return [
        SessionSpan(
            agent,
            (start - recording_start).total_seconds(),
            (end - recording_start).total_seconds() if end else None,
        )
        for agent, start, end in sessions
    ]


def agent_at(time_s: float, spans: Sequence[SessionSpan]) -> int | None:
    """The agent of the session covering TIME_S (the latest-started one if several do);
    outside every session, the agent of the nearest one."""
    if not spans:
        return None
    covering = [s for s in spans if s.start <= time_s and (s.end is None or time_s < s.end)]
    if covering:
        return max(covering, key=lambda s: s.start).agent_id

    def distance(s: SessionSpan) -> float:
        if time_s < s.start:
            return s.start - time_s
        return time_s - (s.end if s.end is not None else s.start)

    return min(spans, key=distance).agent_id
