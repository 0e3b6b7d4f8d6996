"""Sentiment accuracy and macro-F1 on the labelled contact-centre lines in tests/data/sentiment:
the development sets the scorer was built on, and the held-out sets written after it was frozen.

Run:  .venv/bin/python -m benchmarks.sentiment
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from callscope.measures import sentiment

SETS = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentiment"
LABELS = ("positive", "neutral", "negative")
# (file, language, role)
RUNS = [
    ("en", "en", "development"),
    ("en-heldout", "en", "development"),
    ("cc-en", "en", "development"),
    ("cc-en-round3", "en", "held out"),
    ("id", "id", "development"),
    ("id-heldout", "id", "development"),
    ("cc-id", "id", "development"),
    ("cc-id-round3", "id", "held out"),
]


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    """The mean over the three labels of F1 (expected, got)."""
    scores = []
    for label in LABELS:
        tp = sum(e == label and g == label for e, g in pairs)
        fp = sum(e != label and g == label for e, g in pairs)
        fn = sum(e == label and g != label for e, g in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def main() -> None:
    print("| set | language | role | lines | accuracy | macro-F1 | wrong (expected → got) |")
    print("|---|---|---|---|---|---|---|")
    for name, language, role in RUNS:
        with open(SETS / f"{name}.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        pairs = [
            (r["label"], sentiment.label(sentiment.score(r["text"], language, r.get("speaker"))))
            for r in rows
        ]
        wrong = Counter(f"{e} → {g}" for e, g in pairs if e != g)
        right = len(pairs) - sum(wrong.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(wrong.items())) or "none"
        print(
            f"| {name} | {language} | {role} | {len(rows)} | {right / len(rows):.1%} "
            f"| {macro_f1(pairs):.3f} | {detail} |"
        )


if __name__ == "__main__":
    main()
