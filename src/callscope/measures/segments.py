"""Words → segments → turns, as docs/metrics.md defines them, and words → the lines a reader
reads (pure functions over plain data)."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_GAP_S = 1.0
BACKCHANNEL_MAX_WORDS = 2
BACKCHANNEL_MAX_S = 1.0
LINE_PAUSE_S = 3.0  # a pause this long always ends a line
LINE_MAX_WORDS = 40  # a line this long ends at its next sentence end
SENTENCE_END = re.compile(r"[.?!…][\"'”’)\]]*$")
CLAUSE_END = re.compile(r"[.?!…,;:][\"'”’)\]]*$")


@dataclass(frozen=True)
class Word:
    """A word with its speaker and times (seconds from the start of the recording)."""

    speaker: str
    start: float
    end: float
    text: str = ""
    confidence: float | None = None


@dataclass
class Segment:
    """A run of one speaker's words: a segment of docs/metrics.md (a maximal run whose gaps are
    all ≤ 1.0 s, made by build_segments) or a line to read (build_lines)."""

    speaker: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)

    @classmethod
    def of(cls, words: Sequence[Word]) -> Segment:
        """A segment made of WORDS (one speaker's, in time order)."""
        return cls(words[0].speaker, words[0].start, max(w.end for w in words), list(words))

    def add(self, word: Word) -> None:
        self.words.append(word)
        self.end = max(self.end, word.end)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def is_backchannel(self) -> bool:
        """At most two words lasting at most one second ("uh-huh", "okay")."""
        return len(self.words) <= BACKCHANNEL_MAX_WORDS and self.duration <= BACKCHANNEL_MAX_S


@dataclass(frozen=True)
class Turn:
    """A maximal run of one speaker's segments, the other's backchannels in between ignored."""

    speaker: str
    segments: tuple[Segment, ...]

    @property
    def start(self) -> float:
        return self.segments[0].start

    @property
    def end(self) -> float:
        return max(s.end for s in self.segments)

    @property
    def duration(self) -> float:
        return self.end - self.start


def build_segments(words: Iterable[Word], max_gap: float = MAX_GAP_S) -> list[Segment]:
    """Group each speaker's words into segments; segments of different speakers may overlap."""
    segments = []
    for speaker_words in _by_speaker(words).values():
        current = Segment.of(speaker_words[:1])
        for word in speaker_words[1:]:
            if word.start - current.end <= max_gap:
                current.add(word)
            else:
                segments.append(current)
                current = Segment.of([word])
        segments.append(current)
    return sorted(segments, key=lambda s: (s.start, s.end, s.speaker))


def _by_speaker(words: Iterable[Word]) -> dict[str, list[Word]]:
    by_speaker: dict[str, list[Word]] = {}
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        by_speaker.setdefault(word.speaker, []).append(word)
    return by_speaker


def build_lines(
    words: Iterable[Word], starts: frozenset[tuple[str, float]] | None = None
) -> list[Segment]:
    """The lines a reader reads: one speaker's words, split at sentence ends and pauses; or,
    given STARTS, exactly where those lines start ((speaker, start) of their first word).

    Between two words of a speaker a new line starts when the pause is over 3 s; after a sentence
    end (. ? ! …) when the pause is at least 1 s or the line already holds 40 words; and where the
    other speaker starts a word in the pause, after a sentence or clause end (, ; :) or when the
    pause is at least 1 s. A sentence is not cut at a shorter pause, whatever the recogniser's
    own segments were.
    """
    by_speaker = _by_speaker(words)
    lines = []
    for speaker, own in by_speaker.items():
        others = sorted(w.start for s, ws in by_speaker.items() if s != speaker for w in ws)
        current = Segment.of(own[:1])
        for before, word in itertools.pairwise(own):
            gap = word.start - before.end
            sentence_end = bool(SENTENCE_END.search(before.text))
            interjected = bisect.bisect_left(others, before.end) < bisect.bisect_left(
                others, word.start
            )
            if starts is not None:
                split = (speaker, word.start) in starts
            else:
                split = (
                    gap > LINE_PAUSE_S
                    or (sentence_end and (gap >= MAX_GAP_S or len(current.words) >= LINE_MAX_WORDS))
                    or (interjected and (gap >= MAX_GAP_S or bool(CLAUSE_END.search(before.text))))
                )
            if split:
                lines.append(current)
                current = Segment.of([word])
            else:
                current.add(word)
        lines.append(current)
    return sorted(lines, key=lambda s: (s.start, s.end, s.speaker))


def build_turns(segments: Sequence[Segment]) -> list[Turn]:
    """Turns from segments in time order.

    A backchannel is ignored when the nearest non-backchannel segments before and after it both
    belong to the other speaker; every other segment joins or starts a turn.
    """
    ordered = sorted(segments, key=lambda s: (s.start, s.end, s.speaker))
    kept = []
    for i, seg in enumerate(ordered):
        if seg.is_backchannel:
            before = next((s for s in reversed(ordered[:i]) if not s.is_backchannel), None)
            after = next((s for s in ordered[i + 1 :] if not s.is_backchannel), None)
            if before and after and before.speaker != seg.speaker and after.speaker != seg.speaker:
                continue
        kept.append(seg)
    turns: list[list[Segment]] = []
    for seg in kept:
        if turns and turns[-1][0].speaker == seg.speaker:
            turns[-1].append(seg)
        else:
            turns.append([seg])
    return [Turn(group[0].speaker, tuple(group)) for group in turns]
