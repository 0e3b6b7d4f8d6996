"""Channels → speakers: bleed removal between channels, and the agent of each session."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher

import numpy as np

from callscope.measures.segments import Word
from callscope.speech.asr import RecognisedWord

SAME_WORD_OVERLAP = 0.5  # share of the shorter word's time two words must share to be one
SAME_TEXT_RATIO = 0.7
BLEED_MARGIN_DB = 10.0  # a channel this much quieter than another is only hearing the other


@dataclass(frozen=True)
class ChannelWords:
    """The words recognised on one audio channel and the speaker that channel carries."""

    channel: int
    speaker: str
    words: Sequence[RecognisedWord]


def _norm(text: str) -> str:
    return re.sub(r"[^\w]", "", text.lower())


def _similar(a: str, b: str) -> bool:
    a, b = _norm(a), _norm(b)
    return a == b or SequenceMatcher(None, a, b).ratio() >= SAME_TEXT_RATIO


def level_meter(audio: np.ndarray, rate: int) -> Callable[[int, float, float], float]:
    """A function giving the RMS level (dBFS) of a channel between two times."""

    def level(channel: int, start: float, end: float) -> float:
        lo, hi = int(start * rate), max(int(end * rate), int(start * rate) + 1)
        chunk = audio[channel, lo:hi]
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
        return 20 * math.log10(rms) if rms > 0 else -120.0

    return level


def remove_bleed(
    channels: Sequence[ChannelWords], level: Callable[[int, float, float], float]
) -> list[tuple[ChannelWords, RecognisedWord]]:
    """Keep each word only on the channel where it is loudest.

    A word heard on two channels at once (the same text, or anything far quieter than on the
    other channel) is echo or bleed of the louder one and is dropped from the quieter one.
    """
    starts = {c.channel: [w.start for w in c.words] for c in channels}
    kept = []
    for own in channels:
        for word in own.words:
            if not any(
                _is_bleed(own, word, other, starts[other.channel], level)
                for other in channels
                if other.channel != own.channel
            ):
                kept.append((own, word))
    return kept


def _is_bleed(
    own: ChannelWords,
    word: RecognisedWord,
    other: ChannelWords,
    other_starts: list[float],
    level: Callable[[int, float, float], float],
) -> bool:
    lo = bisect.bisect_left(other_starts, word.start - 5.0)
    hi = bisect.bisect_right(other_starts, word.end)
    for candidate in other.words[lo:hi]:
        shared = min(word.end, candidate.end) - max(word.start, candidate.start)
        shortest = max(min(word.end - word.start, candidate.end - candidate.start), 1e-3)
        if shared / shortest < SAME_WORD_OVERLAP:
            continue
        start, end = min(word.start, candidate.start), max(word.end, candidate.end)
        mine, theirs = level(own.channel, start, end), level(other.channel, start, end)
        if theirs > mine and (
            _similar(word.text, candidate.text) or theirs - mine >= BLEED_MARGIN_DB
        ):
            return True
    return False


def attribute(channels: Sequence[ChannelWords], audio: np.ndarray, rate: int) -> list[Word]:
    """Words with their speaker, echo and bleed removed, in time order."""
    kept = (
        remove_bleed(channels, level_meter(audio, rate))
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
