"""Sentiment accuracy on the labelled customer-service sentences in tests/data/sentiment.

Run:  .venv/bin/python -m benchmarks.sentiment
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from callscope.measures import sentiment

SETS = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentiment"


def main() -> None:
    print("| set | language | sentences | accuracy | wrong (expected → got) |")
    print("|---|---|---|---|---|")
    for name, language in [("en", "en"), ("en-heldout", "en"), ("id", "id"), ("id-heldout", "id")]:
        with open(SETS / f"{name}.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        wrong = Counter()
        for row in rows:
            got = sentiment.label(sentiment.score(row["text"], language))
            if got != row["label"]:
                wrong[f"{row['label']} → {got}"] += 1
        right = len(rows) - sum(wrong.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(wrong.items())) or "none"
        print(f"| {name} | {language} | {len(rows)} | {right / len(rows):.1%} | {detail} |")


if __name__ == "__main__":
    main()
