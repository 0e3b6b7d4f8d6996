"""Existing transcripts brought in: our JSON format and WebVTT with speaker voices.

A transcript becomes words with their speaker (`agent` or `customer`) and times; segments,
sentiment and metrics are then computed from them exactly as for a transcribed call.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass
from typing import Any, Literal

import webvtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callscope import errors
from callscope.measures.segments import Word
from callscope.vocabulary import Speaker

FORMATS = ("json", "vtt")
MAX_WORDS = 500_000
MAX_SECONDS = 48 * 3600  # no call lasts longer; later times are refused


class TranscriptError(errors.Refused):
    """An imported transcript cannot be read; the message names the problem."""


@dataclass(frozen=True)
class Transcript:
    """An imported transcript: its language (if it says) and its words in time order."""

    language: str | None
    words: list[Word]
    # where the transcript's own lines start, (speaker, start_s): imported JSON segments stay
    # the lines they were (with their own sentiment); none: lines are found as for a recording
    line_starts: frozenset[tuple[str, float]] | None = None

    @property
    def end_s(self) -> float:
        return max(w.end for w in self.words)


# --- our JSON format ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WordIn(_Strict):
    text: str = Field(min_length=1, max_length=200)
    start_s: float = Field(ge=0, le=MAX_SECONDS)
    end_s: float = Field(ge=0, le=MAX_SECONDS)
    confidence: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> WordIn:
        if self.end_s < self.start_s:
            raise ValueError(f"ends ({self.end_s}) before it starts ({self.start_s})")
        return self


class SegmentIn(_Strict):
    speaker: Literal["agent", "customer"]
    start_s: float = Field(ge=0, le=MAX_SECONDS)
    end_s: float = Field(ge=0, le=MAX_SECONDS)
    text: str = ""
    words: list[WordIn] = []

    @model_validator(mode="after")
    def _ordered(self) -> SegmentIn:
        if self.end_s < self.start_s:
            raise ValueError(f"ends ({self.end_s}) before it starts ({self.start_s})")
        if not self.words and not self.text.strip():
            raise ValueError("has neither words nor text")
        return self


class TranscriptIn(_Strict):
    language: Literal["en", "id"] | None = None
    segments: list[SegmentIn] = Field(min_length=1)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_json(raw: bytes | str) -> Transcript:
    """Our format: `{"language", "segments": [{"speaker", "start_s", "end_s", "text",
    "words": [{"text", "start_s", "end_s", "confidence"}]}]}`, alone or as the `transcript` of
    an analysis document (an export). A segment without words has its text spread evenly."""
    data = errors.read_json(raw, "transcript", TranscriptError)
    if isinstance(data, dict) and isinstance(data.get("transcript"), dict):
        data = data["transcript"]
    try:
        parsed = TranscriptIn.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_field_path(('transcript', *e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        ]
        raise TranscriptError("; ".join(problems)) from exc
    words = []
    starts = set()
    for seg in parsed.segments:
        if seg.words:
            own = [Word(seg.speaker, w.start_s, w.end_s, w.text, w.confidence) for w in seg.words]
        else:
            own = spread(seg.speaker, seg.text, seg.start_s, seg.end_s)
        if own:
            starts.add((seg.speaker, min(w.start for w in own)))
        words += own
    return _finished(parsed.language, words, frozenset(starts))


def spread(speaker: str, text: str, start: float, end: float) -> list[Word]:
    """TEXT's words over START..END, evenly (a transcript that gives no word times)."""
    tokens = text.split()
    step = (end - start) / max(len(tokens), 1)
    return [
        Word(speaker, round(start + i * step, 3), round(start + (i + 1) * step, 3), token)
        for i, token in enumerate(tokens)
    ]


def _finished(
    language: str | None,
    words: list[Word],
    line_starts: frozenset[tuple[str, float]] | None = None,
) -> Transcript:
    if not words:
        raise TranscriptError("transcript holds no words")
    if len(words) > MAX_WORDS:
        raise TranscriptError(f"transcript holds {len(words)} words, over the limit of {MAX_WORDS}")
    if (last := max(w.end for w in words)) > MAX_SECONDS:
        raise TranscriptError(
            f"transcript runs to {last:.0f} s, past the longest call ({MAX_SECONDS // 3600} h)"
        )
    return Transcript(
        language, sorted(words, key=lambda w: (w.start, w.end, w.speaker)), line_starts
    )


# --- WebVTT ----------------------------------------------------------------------------------

VOICE = re.compile(r"<v(?P<classes>(?:\.[\w-]+)*)(?:\s+(?P<name>[^>]*))?>")
TOKEN = re.compile(
    r"<(?P<time>(?:\d+:)?\d{2}:\d{2}\.\d{3})>|(?P<space>\s+)|(?P<tag></?[^>]*>)|(?P<word>[^<\s]+)"
)
ROLES = tuple(speaker.value for speaker in Speaker)


def _seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return round(parts[0] * 3600 + parts[1] * 60 + parts[2], 3)


def parse_vtt(raw: bytes | str, names: dict[str, str] | None = None) -> Transcript:
    """WebVTT whose cues name their speaker as a voice: `<v.agent Daniel>` (the role as class,
    as callscope exports it) or `<v Daniel>` with Daniel one of NAMES (lower-cased name →
    role: the call's agents and customer). Inline timestamps give word times (a timestamp
    right after a word is its end); a cue without them has its words spread evenly."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        captions = webvtt.from_string(text).captions
    except (UnicodeDecodeError, webvtt.errors.MalformedFileError) as exc:
        raise TranscriptError(f"transcript is not valid WebVTT: {exc}") from exc
    names = {k.lower(): v for k, v in (names or {}).items()}
    words: list[Word] = []
    for number, cue in enumerate(captions, start=1):
        voice = VOICE.search(cue.raw_text)
        if voice is None:
            raise TranscriptError(
                f"WebVTT cue {number} ({cue.start}) has no voice (<v Name>): who speaks is unknown"
            )
        role = _role(voice, names, number)
        # (the library's *_in_seconds drop the milliseconds)
        start, end = _seconds(cue.start), _seconds(cue.end)
        if end < start:
            raise TranscriptError(
                f"WebVTT cue {number} ends ({cue.end}) before it starts ({cue.start})"
            )
        if end > MAX_SECONDS:
            raise TranscriptError(
                f"WebVTT cue {number} ends at {cue.end}, "
                f"past the longest call ({MAX_SECONDS // 3600} h)"
            )
        words += _cue_words(role, cue.raw_text, start, end)
    return _finished(None, words)


def _role(voice: re.Match, names: dict[str, str], number: int) -> str:
    classes = [c for c in voice["classes"].split(".") if c]
    for role in ROLES:
        if role in classes:
            return role
    name = html.unescape((voice["name"] or "").strip())
    found = names.get(name.lower()) or (name.lower() if name.lower() in ROLES else None)
    if found is None:
        raise TranscriptError(
            f"WebVTT cue {number}: the voice {name!r} is neither agent nor customer: give it the "
            f"class (<v.agent {name}>) or use the name of the call's agent or customer"
        )
    return found


def _cue_words(role: str, raw: str, start: float, end: float) -> list[Word]:
    start, end = round(start, 3), round(end, 3)
    found: list[list[Any]] = []  # [text, start or None, end or None]
    pending: float | None = None
    after_word = False
    for token in TOKEN.finditer(raw):
        if token["time"]:
            stamp = _seconds(token["time"])
            if after_word and found:
                found[-1][2] = stamp
            else:
                pending = stamp
            after_word = False
        elif token["space"]:
            after_word = False
        elif token["word"]:
            found.append([html.unescape(token["word"]), pending, None])
            pending, after_word = None, True
    if not found:
        return []
    if all(w[1] is None and w[2] is None for w in found):  # no word times at all
        return spread(role, " ".join(w[0] for w in found), start, end)
    found[0][1] = start if found[0][1] is None else found[0][1]
    for before, w in itertools.pairwise(found):  # a word without a start follows straight on
        w[1] = w[1] if w[1] is not None else (before[2] if before[2] is not None else before[1])
    for i, w in enumerate(found):
        if w[2] is None:
            w[2] = found[i + 1][1] if i + 1 < len(found) else end
    return [Word(role, w[1], max(w[1], w[2]), w[0]) for w in found]


def parse(raw: bytes | str, fmt: str, names: dict[str, str] | None = None) -> Transcript:
    """A transcript in FMT (`json` or `vtt`)."""
    if fmt == "json":
        return parse_json(raw)
    if fmt == "vtt":
        return parse_vtt(raw, names)
    raise TranscriptError(f"transcript format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def format_of(filename: str | None) -> str | None:
    """The format a file name's extension says, if it says one."""
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return {"json": "json", "vtt": "vtt", "webvtt": "vtt"}.get(suffix)
