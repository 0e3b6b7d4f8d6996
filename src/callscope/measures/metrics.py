"""Conversation metrics exactly as docs/metrics.md defines them (pure functions over plain data)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from callscope.measures.segments import Segment, Turn, build_turns
from callscope.vocabulary import Speaker

# the speakers, which are also the keys of per-speaker fields in the analysis document
AGENT, CUSTOMER = Speaker.AGENT.value, Speaker.CUSTOMER.value
NON_TALK_MIN_S = 3.0
INTERRUPTION_MIN_OVERLAP_S = 0.5


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def union(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The [start, end] spans merged where they overlap or touch, in order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _talk(segments: Sequence[Segment], speaker: str) -> list[tuple[float, float]]:
    return union([(s.start, s.end) for s in segments if s.speaker == speaker])


def talk_time(segments: Sequence[Segment], speaker: str) -> float:
    """T(s): the length of the union of the speaker's segments."""
    return sum(end - start for start, end in _talk(segments, speaker))


def gaps(spans: Sequence[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """The parts of [lo, hi] that no span covers."""
    result, cursor = [], lo
    for start, end in sorted(spans):
        if start > cursor:
            result.append((cursor, min(start, hi)))
        cursor = max(cursor, end)
        if cursor >= hi:
            break
    if cursor < hi:
        result.append((cursor, hi))
    return [(a, b) for a, b in result if b > a]


def switches(turns: Sequence[Turn]) -> list[tuple[Turn, Turn]]:
    """Consecutive turn pairs whose speakers differ."""
    return [(a, b) for a, b in pairwise(turns) if a.speaker != b.speaker]


def pauses(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The gap of every switch whose gap is ≥ 0 (overlaps are not pauses)."""
    return [
        {
            "from": a.speaker,
            "to": b.speaker,
            "start_s": a.end,
            "end_s": b.start,
            "duration_s": b.start - a.end,
        }
        for a, b in switches(turns)
        if b.start - a.end >= 0
    ]


def interruptions(segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """Non-backchannel segments starting inside the other speaker's segment, overlapping ≥ 0.5 s."""
    found = []
    for seg in segments:
        if seg.is_backchannel:
            continue
        for other in segments:
            if other.speaker == seg.speaker or not (other.start < seg.start < other.end):
                continue
            overlap = min(seg.end, other.end) - seg.start
            if overlap >= INTERRUPTION_MIN_OVERLAP_S:
                found.append(
                    {
                        "speaker": seg.speaker,
                        "start_s": seg.start,
                        "end_s": seg.start + overlap,
                        "overlap_s": overlap,
                    }
                )
                break
    return found


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compute(segments: Sequence[Segment]) -> dict[str, Any]:
    """Every metric of docs/metrics.md, in the shape of the analysis document."""
    turns = build_turns(segments)
    t_agent, t_customer = talk_time(segments, AGENT), talk_time(segments, CUSTOMER)
    words = {
        s: sum(len(seg.words) for seg in segments if seg.speaker == s) for s in (AGENT, CUSTOMER)
    }
    both = t_agent + t_customer
    first = min((s.start for s in segments), default=0.0)
    last = max((s.end for s in segments), default=0.0)
    span = last - first
    switch_pairs = switches(turns)
    all_pauses = pauses(turns)
    response = [p["duration_s"] for p in all_pauses if p["from"] == CUSTOMER and p["to"] == AGENT]
    customer_turns = [t for t in turns if t.speaker == CUSTOMER]
    longest = max(customer_turns, key=lambda t: t.duration, default=None)
    silences = [
        (a, b)
        for a, b in gaps([(s.start, s.end) for s in segments], first, last)
        if b - a >= NON_TALK_MIN_S
    ]
    silent_total = sum(b - a for a, b in silences)
    found = interruptions(segments)
    agent_pct = 100 * t_agent / both if both else None
    return {
        "talk_time_s": {AGENT: _r(t_agent), CUSTOMER: _r(t_customer)},
        "talking_speed_wpm": {
            AGENT: _r(60 * words[AGENT] / t_agent if t_agent else None, 1),
            CUSTOMER: _r(60 * words[CUSTOMER] / t_customer if t_customer else None, 1),
            "overall": _r(60 * (words[AGENT] + words[CUSTOMER]) / both if both else None, 1),
        },
        "talk_to_listen": {
            "agent_pct": _r(agent_pct, 1),
            "customer_pct": _r(100 - agent_pct if agent_pct is not None else None, 1),
            "ratio": _r(t_agent / t_customer if t_customer else None, 2),
        },
        "switches": {
            "count": len(switch_pairs),
            "per_minute": _r(len(switch_pairs) / (span / 60) if span > 0 else None, 2),
        },
        "average_pause_s": _r(_mean([p["duration_s"] for p in all_pauses])),
        "agent_response_pause_s": _r(_mean(response)),
        "longest_customer_monologue": {
            "duration_s": _r(longest.duration if longest else None),
            "start_s": _r(longest.start if longest else None),
            "end_s": _r(longest.end if longest else None),
        },
        "non_talk": {
            "total_s": _r(silent_total),
            "count": len(silences),
            "pct": _r(100 * silent_total / span if span > 0 else None, 1),
        },
        "interruptions": {
            s: {
                "count": sum(1 for f in found if f["speaker"] == s),
                "time_s": _r(sum(f["overlap_s"] for f in found if f["speaker"] == s)),
            }
            for s in (AGENT, CUSTOMER)
        },
        "span_s": {"start_s": _r(first), "end_s": _r(last)},
        "evidence": {
            "switches": [_r(b.start) for _a, b in switch_pairs],
            "pauses": [{"start_s": _r(p["start_s"]), "end_s": _r(p["end_s"])} for p in all_pauses],
            "non_talk": [{"start_s": _r(a), "end_s": _r(b)} for a, b in silences],
            "interruptions": [
                {"speaker": f["speaker"], "start_s": _r(f["start_s"]), "end_s": _r(f["end_s"])}
                for f in found
            ],
            # what talk time, talk share and talking speed are measured over
            "talk": {
                s: [{"start_s": _r(a), "end_s": _r(b)} for a, b in _talk(segments, s)]
                for s in (AGENT, CUSTOMER)
            },
        },
    }
