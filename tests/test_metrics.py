"""Segments, turns and metrics (docs/metrics.md): properties and exact values on the synthetic
call."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callscope.measures import metrics
from callscope.measures.segments import Word, build_segments, build_turns
from tests.evaluation import truth_turns, truth_words


def w(speaker: str, start: float, end: float, text: str = "word") -> Word:
    return Word(speaker, start, end, text)


# --- definitions, by example ---------------------------------------------------------------


def test_segment_splits_on_gaps_over_one_second():
    segs = build_segments([w("agent", 0, 0.5), w("agent", 1.5, 2.0), w("agent", 3.1, 3.5)])
    assert [(s.start, s.end) for s in segs] == [(0, 2.0), (3.1, 3.5)]


def test_segments_of_different_speakers_may_overlap():
    segs = build_segments([w("agent", 0, 2), w("customer", 1, 3)])
    assert [(s.speaker, s.start, s.end) for s in segs] == [("agent", 0, 2), ("customer", 1, 3)]


def test_backchannel_is_two_words_within_a_second():
    assert build_segments([w("customer", 0, 0.4), w("customer", 0.5, 0.9)])[0].is_backchannel
    assert not build_segments([w("customer", 0, 0.4), w("customer", 0.5, 1.2)])[0].is_backchannel
    three = [w("customer", 0, 0.2), w("customer", 0.3, 0.5), w("customer", 0.6, 0.8)]
    assert not build_segments(three)[0].is_backchannel


def test_backchannel_between_one_speakers_segments_does_not_break_the_turn():
    words = [
        w("agent", 0, 1),
        w("agent", 1.2, 2),
        w("customer", 3.5, 3.9),
        w("agent", 5.0, 6.0),
        w("agent", 6.2, 7.0),
        w("customer", 9, 10),
        w("customer", 10.2, 11),
    ]
    turns = build_turns(build_segments(words))
    assert [(t.speaker, t.start, t.end) for t in turns] == [("agent", 0, 7.0), ("customer", 9, 11)]


def test_backchannel_that_starts_the_other_speakers_talk_is_a_turn():
    words = [
        w("agent", 0, 1),
        w("agent", 1.1, 2),
        w("customer", 3, 3.5),
        w("customer", 5, 6),
        w("customer", 6.2, 7.5),
    ]
    turns = build_turns(build_segments(words))
    assert [t.speaker for t in turns] == ["agent", "customer"]


def test_metrics_of_a_small_conversation():
    words = [
        w("agent", 0, 1),
        w("agent", 1.5, 2),  # agent 0–2
        w("customer", 2.5, 4),
        w("customer", 4.5, 6),  # customer 2.5–6 (pause 0.5)
        w("agent", 5.5, 7),
        w("agent", 7.2, 8),  # agent 5.5–8 (overlap 0.5)
        w("customer", 12, 13),
        w("customer", 13.1, 14),
    ]  # customer 12–14 (pause 4, silence)
    m = metrics.compute(build_segments(words))
    assert m["talk_time_s"] == {"agent": 4.5, "customer": 5.5}
    assert m["switches"]["count"] == 3
    assert m["switches"]["per_minute"] == round(3 / (14 / 60), 2)
    assert m["average_pause_s"] == pytest.approx((0.5 + 4.0) / 2)
    assert m["agent_response_pause_s"] is None  # the only customer→agent switch overlaps
    assert m["longest_customer_monologue"] == {"duration_s": 3.5, "start_s": 2.5, "end_s": 6}
    assert m["non_talk"] == {"total_s": 4.0, "count": 1, "pct": round(100 * 4 / 14, 1)}
    assert m["talk_to_listen"] == {"agent_pct": 45.0, "customer_pct": 55.0, "ratio": 0.82}
    assert m["talking_speed_wpm"]["agent"] == round(4 / 4.5 * 60, 1)
    assert m["interruptions"]["agent"] == {"count": 1, "time_s": 0.5}
    assert m["interruptions"]["customer"] == {"count": 0, "time_s": 0}


def test_short_overlap_is_not_an_interruption():
    words = [w("agent", 0, 1), w("agent", 1.1, 3), w("customer", 2.7, 3.5), w("customer", 3.6, 5)]
    assert metrics.compute(build_segments(words))["interruptions"]["customer"]["count"] == 0


def test_no_words_gives_empty_metrics():
    m = metrics.compute([])
    assert m["switches"]["count"] == 0 and m["talk_to_listen"]["ratio"] is None


# --- exact values on the synthetic call's truth ------------------------------------------------


def test_metrics_match_the_synthetic_calls_truth():
    turns = truth_turns("synthetic_en_stereo")
    words = truth_words(turns)
    m = metrics.compute(build_segments(words))
    for speaker in ("agent", "customer"):
        own = [t for t in turns if t["speaker"] == speaker]
        spoken = sum(t["end"] - t["start"] for t in own)
        # a gap of ≤ 1 s between one speaker's turns lies inside a segment (the hold: 0.844 s)
        inner = sum(b["start"] - a["end"] for a, b in pairwise(own) if b["start"] - a["end"] <= 1.0)
        expected = spoken + inner
        assert m["talk_time_s"][speaker] == pytest.approx(expected, abs=0.002)
    merged = [t for i, t in enumerate(turns) if i == 0 or turns[i - 1]["speaker"] != t["speaker"]]
    assert m["switches"]["count"] == len(merged) - 1 == 26
    customer_turns = [t for t in turns if t["speaker"] == "customer"]
    longest = max(customer_turns, key=lambda t: t["end"] - t["start"])
    assert m["longest_customer_monologue"]["duration_s"] == pytest.approx(26.56, abs=0.001)
    assert m["longest_customer_monologue"]["start_s"] == longest["start"]
    gaps = [
        b["start"] - a["end"]
        for a, b in pairwise(turns)
        if a["speaker"] != b["speaker"] and b["start"] >= a["end"]
    ]
    assert m["average_pause_s"] == pytest.approx(sum(gaps) / len(gaps), abs=0.001)
    assert m["interruptions"]["agent"]["count"] == m["interruptions"]["customer"]["count"] == 0


# --- properties --------------------------------------------------------------------------------

speakers = st.sampled_from(["agent", "customer"])
word_lists = st.lists(
    st.tuples(speakers, st.floats(0, 600, allow_nan=False), st.floats(0.05, 3, allow_nan=False)),
    min_size=1,
    max_size=60,
).map(lambda items: [Word(s, round(a, 3), round(a + d, 3), "x") for s, a, d in items])


@settings(max_examples=150, deadline=None)
@given(word_lists)
def test_metric_invariants(words):
    segs = build_segments(words)
    turns = build_turns(segs)
    m = metrics.compute(segs)
    pct = m["talk_to_listen"]["agent_pct"]
    assert pct is None or 0 <= pct <= 100
    assert m["switches"]["count"] < max(len(turns), 1)
    assert m["average_pause_s"] is None or m["average_pause_s"] >= 0
    assert m["non_talk"]["total_s"] >= 0 and (m["non_talk"]["pct"] or 0) <= 100
    assert all(s.end - s.start >= 0 for s in segs)
    span = max(x.end for x in words) - min(x.start for x in words)
    assert m["talk_time_s"]["agent"] + m["talk_time_s"]["customer"] >= 0
    assert max(m["talk_time_s"].values()) <= span + 1e-6
    assert sum(len(s.words) for s in segs) == len(words)
    for speaker, spans in m["evidence"]["talk"].items():  # (talk time is the evidence's sum)
        assert all(a["end_s"] <= b["start_s"] for a, b in zip(spans, spans[1:], strict=False))
        length = sum(x["end_s"] - x["start_s"] for x in spans)
        assert length == pytest.approx(m["talk_time_s"][speaker], abs=0.002 * (len(spans) + 1))


@settings(max_examples=100, deadline=None)
@given(word_lists, st.floats(0, 3600, allow_nan=False))
def test_metrics_do_not_change_when_all_times_shift(words, shift):
    shifted = [Word(x.speaker, x.start + shift, x.end + shift, x.text) for x in words]
    a, b = metrics.compute(build_segments(words)), metrics.compute(build_segments(shifted))
    # Results are rounded (shares to 0.1, ratios and rates to 0.01); a value lying on a rounding
    # boundary may move by one unit when float sums shift, never more.
    for key, unit in [
        ("talk_time_s", 0.001),
        ("switches", 0.01),
        ("non_talk", 0.1),
        ("interruptions", 0.001),
        ("talk_to_listen", 0.1),
    ]:
        assert _close(a[key], b[key], unit + 0.002), key
    assert _close(a["average_pause_s"], b["average_pause_s"])
    assert _close(
        a["longest_customer_monologue"]["duration_s"], b["longest_customer_monologue"]["duration_s"]
    )


def _close(a, b, tol: float = 0.012) -> bool:
    if isinstance(a, dict):
        return all(_close(a[k], b[k], tol) for k in a)
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol
