"""Bleed removal and the agent of each session, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from callscope.speech.asr import RecognisedWord
from callscope.speech.attribution import (
    ChannelWords,
    SessionSpan,
    agent_at,
    attribute,
    session_spans,
)

RATE = 100


def audio_with(levels: list[tuple[int, float, float, float]], seconds: int = 10) -> np.ndarray:
    """Two channels of noise at given amplitudes over given spans: (channel, start, end, amp)."""
    rng = np.random.default_rng(0)
    audio = np.zeros((2, seconds * RATE), dtype=np.float32)
    for ch, start, end, amp in levels:
        lo, hi = int(start * RATE), int(end * RATE)
        audio[ch, lo:hi] = amp * rng.standard_normal(hi - lo)
    return audio


def rw(text: str, start: float, end: float) -> RecognisedWord:
    return RecognisedWord(text, start, end, 0.9)


def test_echo_of_a_word_is_kept_only_on_the_louder_channel():
    audio = audio_with([(0, 1, 2, 0.5), (1, 1, 2, 0.05), (1, 4, 5, 0.5), (0, 4, 5, 0.05)])
    channels = [
        ChannelWords(0, "agent", [rw("hello", 1.0, 1.9), rw("there", 4.1, 4.9)]),
        ChannelWords(1, "customer", [rw("hello", 1.05, 1.95), rw("there", 4.0, 5.0)]),
    ]
    words = attribute(channels, audio, RATE)
    assert [(w.speaker, w.text) for w in words] == [("agent", "hello"), ("customer", "there")]


def test_misheard_bleed_far_quieter_than_the_other_channel_is_dropped():
    audio = audio_with([(0, 1, 2, 0.5), (1, 1, 2, 0.02)])
    channels = [
        ChannelWords(0, "agent", [rw("order", 1.0, 1.8)]),
        ChannelWords(1, "customer", [rw("water", 1.0, 1.8)]),
    ]
    assert [(w.speaker, w.text) for w in attribute(channels, audio, RATE)] == [("agent", "order")]


def test_both_talking_at_once_keeps_both():
    audio = audio_with([(0, 1, 2, 0.5), (1, 1, 2, 0.4)])
    channels = [
        ChannelWords(0, "agent", [rw("sorry", 1.0, 1.8)]),
        ChannelWords(1, "customer", [rw("wait", 1.1, 1.9)]),
    ]
    assert len(attribute(channels, audio, RATE)) == 2


def test_agent_of_the_session_covering_the_time():
    t0 = datetime(2026, 11, 20, 14, tzinfo=UTC)
    spans = session_spans(
        [(1, t0, t0 + timedelta(seconds=60)), (2, t0 + timedelta(seconds=60), None)], t0
    )
    assert spans == [SessionSpan(1, 0, 60), SessionSpan(2, 60, None)]
    assert agent_at(10, spans) == 1
    assert agent_at(60, spans) == 2
    assert agent_at(500, spans) == 2
    assert agent_at(-3, spans) == 1
    consult = spans + [SessionSpan(3, 20, 30)]
    assert agent_at(25, consult) == 3
    assert agent_at(5, []) is None
