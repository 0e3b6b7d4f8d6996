"""Each side's words on their own speaker when the channels hear each other: echo, a phrase
said under the other side's speech, a quiet caller on a phone line. The speech layer alone
(recognition and attribution, as processing runs them), without a database."""

from __future__ import annotations

import re

import numpy as np
import pytest

from callscope.config import Settings
from callscope.measures.segments import Word
from callscope.speech import asr, media
from callscope.vocabulary import Speaker
from tests.evaluation import quiet_caller, speaker_accuracy, stereo_words, truth_turns
from tests.support import DEMO_CALLS, write_wav

pytestmark = pytest.mark.model

EN = DEMO_CALLS / "synthetic_en_stereo.wav"


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory, model_dir) -> asr.Transcriber:
    return asr.transcriber(
        Settings(data_dir=tmp_path_factory.mktemp("speech"), model_dir=model_dir)
    )


def norm_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def said_by(words: list[Word], speaker: str) -> list[Word]:
    return [w for w in words if w.speaker == speaker]


def with_echo(audio: np.ndarray, rate: int, db: float = -20.0, delay_s: float = 0.05) -> np.ndarray:
    """Each channel with the other's sound added DELAY_S later at DB, as a phone line's echo."""
    gain, delay = 10 ** (db / 20), int(delay_s * rate)
    echoed = audio.copy()
    echoed[0, delay:] += gain * audio[1, : audio.shape[1] - delay]
    echoed[1, delay:] += gain * audio[0, : audio.shape[1] - delay]
    return echoed


def heard_twice(words: list[Word]) -> list[Word]:
    """Customer words heard at the same time with the same text on the agent's channel."""
    agent = said_by(words, Speaker.AGENT)
    return [
        word
        for word in said_by(words, Speaker.CUSTOMER)
        if any(
            norm_words(a.text) == norm_words(word.text)
            and min(a.end, word.end) - max(a.start, word.start) > 0
            for a in agent
        )
    ]


def test_echo_between_channels_is_not_duplicated(transcriber, tmp_path):
    audio, rate = media.decode(EN)
    path = write_wav(tmp_path / "echo.wav", list(with_echo(audio, rate)), rate)
    words = stereo_words(transcriber, path)
    assert speaker_accuracy(words, truth_turns("synthetic_en_stereo")) >= 0.99
    assert heard_twice(words) == []


def test_a_phrase_spoken_under_the_other_sides_echo_is_kept(transcriber, tmp_path):
    audio, rate = media.decode(EN)
    # the customer's "I would prefer the replacement if it can arrive before Saturday."
    # (88.0–91.6 s) said again at 72.0 s, while the agent talks (71.2–77.9 s)
    phrase = audio[1, int(88.0 * rate) : int(91.7 * rate)]
    at = int(72.0 * rate)
    audio[1, at : at + len(phrase)] += phrase
    audio[1] *= 10 ** (-12 / 20)  # the caller's side 12 dB quieter than the agent's
    path = write_wav(tmp_path / "overlap.wav", list(with_echo(audio, rate)), rate)
    words = stereo_words(transcriber, path)
    said = norm_words("I would prefer the replacement if it can arrive before Saturday.")
    heard = [
        token
        for w in said_by(words, Speaker.CUSTOMER)
        if 71.5 <= w.start <= 76.0
        for token in norm_words(w.text)
    ]
    assert len(set(said) & set(heard)) >= 0.7 * len(set(said)), heard
    agent = " ".join(w.text for w in said_by(words, Speaker.AGENT))
    assert "saturday" not in norm_words(agent)
    assert heard_twice(words) == []


def test_a_quiet_caller_on_a_phone_line_keeps_their_words(transcriber, tmp_path):
    """The caller's side 30 dB below the agent's, 8 kHz mu-law: callscope keeps at least as
    many of the caller's words as the recogniser finds in the whole channel without voice
    activity detection (less 5 %), and no turn of theirs is lost."""
    path = quiet_caller(EN, tmp_path / "quiet.wav", db=-30.0)
    caller = said_by(stereo_words(transcriber, path), Speaker.CUSTOMER)
    ours = [token for w in caller for token in norm_words(w.text)]
    channel = media.decode(path, sample_rate=media.SAMPLE_RATE)[0][1]
    segments, _info = transcriber.model.transcribe(
        channel, language="en", beam_size=1, vad_filter=False
    )
    plain = [token for segment in segments for token in norm_words(segment.text)]
    assert len(ours) >= 0.95 * len(plain), (len(ours), len(plain))
    heard = [(w.start + w.end) / 2 for w in caller]
    turns = [t for t in truth_turns("synthetic_en_stereo") if t["speaker"] == "customer"]
    missed = [t["text"] for t in turns if not any(t["start"] <= m <= t["end"] for m in heard)]
    assert missed == []
