"""How callscope reads the sentiment of a line (docs/metrics.md#sentiment): the rules where they
are sure (a cue or sentiment words, or nothing but service formulas), else the learned
classifier — a logistic regression over the line's sentence embedding, trained by
scripts/train_sentiment.py on the labelled lines of tests/data/sentiment, its weights in
learned_sentiment.npz and .json beside this module. A line the classifier is less sure of
than its threshold is uncertain (no score). Where embeddings cannot be made here, the rules
read every line (the scorer is then "rules")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from callscope.measures import embeddings, sentiment

MODEL = Path(__file__).parent / "learned_sentiment"
RULES, BOTH = "rules", "rules+classifier"  # the scorer an analysis was made with


@dataclass(frozen=True)
class Reading:
    """A line's sentiment: its score in [−1, 1] (None: uncertain) and what decided it — the
    rules' cue phrases or sentiment words, `{"like": TEXT}` (the nearest labelled example, when
    the classifier decided) or `{"unsure": P}` (the classifier's best probability, when it was
    not sure enough)."""

    score: float | None
    because: list[Any]


@dataclass(frozen=True)
class Classifier:
    weights: np.ndarray  # labels × dimensions
    bias: np.ndarray
    examples: np.ndarray  # the labelled lines' embeddings (unit rows)
    texts: list[str]
    labels: list[str]
    threshold: float

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        found = np.exp(logits)
        return found / found.sum(axis=1, keepdims=True)

    def nearest(self, vector: np.ndarray, label: str) -> str:
        """The labelled line of LABEL closest in meaning to VECTOR."""
        similar = self.examples @ vector
        ranked = np.argsort(-similar)
        return next(self.texts[i] for i in ranked if self.labels[i] == label)


@cache
def classifier() -> Classifier | None:
    """The learned classifier, or None where embeddings cannot be made here."""
    if not embeddings.available():
        return None
    about = json.loads(MODEL.with_suffix(".json").read_text(encoding="utf-8"))
    with np.load(MODEL.with_suffix(".npz")) as arrays:
        examples = arrays["examples"].astype(np.float32)
        return Classifier(
            weights=arrays["weights"].astype(np.float32),
            bias=arrays["bias"].astype(np.float32),
            examples=examples / np.linalg.norm(examples, axis=1, keepdims=True),
            texts=[e["text"] for e in about["examples"]],
            labels=[e["label"] for e in about["examples"]],
            threshold=float(about["threshold"]),
        )


def scorer() -> str:
    """Which scorer reads lines here: the rules and the classifier, or the rules alone."""
    return BOTH if classifier() is not None else RULES


def read(
    lines: Sequence[tuple[str, str | None]],
    language: str | None,
    known: dict[str, np.ndarray] | None = None,
) -> list[Reading]:
    """The sentiment of each (text, speaker) of LINES, in LANGUAGE ("id", else English); the
    lines the rules leave open are embedded together, each distinct text once (unless KNOWN
    has its embedding already)."""
    model = classifier()
    ruled = [sentiment.ruled(text, language, speaker) for text, speaker in lines]
    if model is None:
        return [Reading(*(r or (0.0, []))) for r in ruled]
    open_texts = sorted({text for (text, _s), r in zip(lines, ruled, strict=True) if r is None})
    found = {}
    if open_texts:
        known = known or {}
        unknown = [t for t in open_texts if t not in known]
        made = dict(zip(unknown, embeddings.embed(unknown), strict=True)) if unknown else {}
        vectors = np.stack([known[t] if t in known else made[t] for t in open_texts])
        probabilities = model.probabilities(vectors)
        found = {
            t: _classified(model, v, p)
            for t, v, p in zip(open_texts, vectors, probabilities, strict=True)
        }
    return [
        Reading(*r) if r is not None else found[text]
        for r, (text, _s) in zip(ruled, lines, strict=True)
    ]


def _classified(model: Classifier, vector: np.ndarray, p: np.ndarray) -> Reading:
    best = int(p.argmax())
    if p[best] < model.threshold:
        return Reading(None, [{"unsure": round(float(p[best]), 2)}])
    label = sentiment.LABELS[best]
    leaning = float(p[sentiment.LABELS.index("positive")] - p[sentiment.LABELS.index("negative")])
    sign = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}[label]
    value = sign * max(abs(leaning), sentiment.POSITIVE_MIN)
    return Reading(round(value, 4), [{"like": model.nearest(vector, label)}])
