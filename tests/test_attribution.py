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

RATE = 8000


def voice(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped like speech: its level rises and falls with syllables of random length."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    level = np.repeat(rng.uniform(0.05, 1.0, n // 800 + 1), 800)[:n]  # a new level every 0.1 s
    return (rng.standard_normal(n) * level).astype(np.float32)


def call(*spoken: tuple[int, float, float, float, int], echo_db: float = -20.0) -> np.ndarray:
    """Two channels holding (channel, start, end, gain, seed) voices, each echoed 60 ms later
    on the other channel at ECHO_DB."""
    audio = np.zeros((2, 10 * RATE), dtype=np.float32)
    for ch, start, end, gain, seed in spoken:
        lo, sound = int(start * RATE), gain * voice(end - start, seed)
        audio[ch, lo : lo + len(sound)] += sound
        delay = lo + int(0.06 * RATE)
        audio[1 - ch, delay : delay + len(sound)] += 10 ** (echo_db / 20) * sound
    return audio


def rw(text: str, start: float, end: float) -> RecognisedWord:
    return RecognisedWord(text, start, end, 0.9)


def test_echo_of_a_word_is_kept_only_on_the_channel_it_was_spoken_on():
    audio = call((0, 1, 2, 0.5, 1), (1, 4, 5, 0.1, 2))  # a quiet caller's echo is quieter still
    channels = [
        ChannelWords(0, "agent", [rw("hello", 1.0, 1.9), rw("there", 4.1, 4.9)]),
        ChannelWords(1, "customer", [rw("hello", 1.05, 1.95), rw("there", 4.0, 5.0)]),
    ]
    words = attribute(channels, audio, RATE)
    assert [(w.speaker, w.text) for w in words] == [("agent", "hello"), ("customer", "there")]


def test_misheard_echo_is_dropped():
    audio = call((0, 1, 2, 0.5, 1), echo_db=-30)
    channels = [
        ChannelWords(0, "agent", [rw("order", 1.0, 1.8)]),
        ChannelWords(1, "customer", [rw("water", 1.0, 1.8)]),
    ]
    assert [(w.speaker, w.text) for w in attribute(channels, audio, RATE)] == [("agent", "order")]


def test_both_talking_at_once_keeps_both_even_the_quiet_caller_under_the_agents_echo():
    # the caller is 20 dB quieter than the agent, as loud as the agent's echo on their channel
    audio = call((0, 1, 2, 0.5, 1), (1, 1.1, 1.9, 0.05, 2))
    channels = [
        ChannelWords(0, "agent", [rw("Got", 1.0, 1.4), rw("it", 1.4, 1.8)]),
        ChannelWords(1, "customer", [rw("got", 1.1, 1.5), rw("home.", 1.5, 1.9)]),
    ]
    assert [(w.speaker, w.text) for w in attribute(channels, audio, RATE)] == [
        ("agent", "Got"),
        ("customer", "got"),
        ("agent", "it"),
        ("customer", "home."),
    ]


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
