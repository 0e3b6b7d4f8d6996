"""Sentiment scoring in English and Indonesian."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callscope.measures import sentiment
from tests.support import DATA

SETS = DATA / "sentiment"


def accuracy(name: str, language: str) -> float:
    with open(SETS / f"{name}.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    right = sum(
        sentiment.label(sentiment.score(r["text"], language, r.get("speaker"))) == r["label"]
        for r in rows
    )
    return right / len(rows)


# Floors a little under what benchmarks/sentiment.py measures (docs/benchmarks.md): the
# development sets the scorer was built on, and the held-out sets written after it was frozen.
@pytest.mark.parametrize(
    "name,language,floor",
    [
        ("en", "en", 0.95),
        ("en-heldout", "en", 0.95),
        ("id", "id", 0.95),
        ("id-heldout", "id", 0.95),
        ("cc-en", "en", 0.95),
        ("cc-id", "id", 0.95),
        ("cc-en-round3", "en", 0.65),
        ("cc-id-round3", "id", 0.65),
    ],
)
def test_accuracy_on_labelled_customer_service_sentences(name, language, floor):
    assert accuracy(name, language) >= floor


def test_labels_follow_the_thresholds():
    assert sentiment.label(0.05) == "positive"
    assert sentiment.label(0.0499) == "neutral"
    assert sentiment.label(-0.05) == "negative"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Pelayanannya bagus", "positive"),
        ("Pelayanannya tidak bagus", "negative"),
        ("Pelayanannya bukan bagus", "negative"),
        ("Masalahnya belum beres", "negative"),
        ("Saya kurang puas", "negative"),
        ("Tidak ada masalah", "positive"),
        ("Petugasnya tidak sopan dan kasar", "negative"),
    ],
)
def test_indonesian_negation(text, expected):
    assert sentiment.label(sentiment.score(text, "id")) == expected


@pytest.mark.parametrize(
    "plain,strong",
    [
        ("Saya kecewa", "Saya sangat kecewa"),
        ("Saya kecewa", "Saya kecewa sekali"),
        ("Saya puas", "Saya puas banget"),
    ],
)
def test_indonesian_intensifiers_strengthen(plain, strong):
    assert abs(sentiment.score(strong, "id")) > abs(sentiment.score(plain, "id"))


@given(st.text(max_size=200), st.sampled_from(["en", "id", None]))
def test_scores_stay_in_range(text, language):
    assert -1.0 <= sentiment.score(text, language) <= 1.0


def test_conversation_sentiment_is_duration_weighted_with_quarters_and_trend():
    segs = [
        {"speaker": "customer", "start_s": 0, "end_s": 10, "score": -0.8},
        {"speaker": "agent", "start_s": 10, "end_s": 12, "score": 0.5},
        {"speaker": "customer", "start_s": 30, "end_s": 40, "score": 0.6},
    ]
    result = sentiment.conversation(segs)
    assert result["overall"]["score"] == pytest.approx((-8 + 1 + 6) / 22, abs=1e-4)
    assert result["customer"] == {"score": pytest.approx(-0.1), "label": "negative", "emoji": "🙁"}
    assert result["agent"]["emoji"] == "🙂"
    assert [q["quarter"] for q in result["quarters"]] == [1, 2, 3, 4]
    assert result["quarters"][2]["score"] is None  # nobody speaks from 20 s to 30 s
    assert result["trend"] == pytest.approx(0.6 - (-0.8))


def test_conversation_without_segments():
    result = sentiment.conversation([])
    assert result["overall"] is None and result["quarters"] == [] and result["trend"] is None
