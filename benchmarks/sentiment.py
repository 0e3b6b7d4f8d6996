"""Sentiment accuracy and macro-F1 on the labelled contact-centre lines in tests/data/sentiment,
for the rules alone, the learned classifier alone and the two together as callscope reads a
line (callscope.measures.learned): the sets the rules were built on and the classifier was
trained on, and the held-out round written after both were frozen.

Together, a line the classifier is not sure enough of is uncertain: it counts as not right in
"accuracy", and "sure" gives the share of lines read with a label and how many of those are
right.

Run:  .venv/bin/python -m benchmarks.sentiment
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from callscope.measures import embeddings, learned, sentiment

SETS = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentiment"
# (file, language); a set the classifier was not trained on is held out
NAMES = [
    ("en", "en"),
    ("en-heldout", "en"),
    ("cc-en", "en"),
    ("cc-en-round3", "en"),
    ("cc-en-round4", "en"),
    ("cc-en-round5", "en"),
    ("cc-en-round6", "en"),
    ("cc-en-round7", "en"),
    ("cc-en-round8", "en"),
    ("id", "id"),
    ("id-heldout", "id"),
    ("cc-id", "id"),
    ("cc-id-round3", "id"),
    ("cc-id-round4", "id"),
    ("cc-id-extra", "id"),
    ("cc-id-round5", "id"),
    ("cc-id-round6", "id"),
    ("cc-id-round7", "id"),
    ("cc-id-round8", "id"),
]


def macro_f1(pairs: list[tuple[str, str | None]]) -> float:
    """The mean over the three labels of F1 (expected, got); an uncertain line (None) is a
    miss for its label."""
    scores = []
    for label in sentiment.LABELS:
        tp = sum(e == label and g == label for e, g in pairs)
        fp = sum(e != label and g == label for e, g in pairs)
        fn = sum(e == label and g != label for e, g in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def figures(pairs: list[tuple[str, str | None]]) -> str:
    right = sum(e == g for e, g in pairs)
    negative = [g for e, g in pairs if e == "negative"]
    recall = sum(g == "negative" for g in negative) / len(negative) if negative else 0.0
    return f"{right / len(pairs):.1%} | {macro_f1(pairs):.3f} | {recall:.0%}"


def main() -> None:
    trained_on = json.loads(learned.MODEL.with_suffix(".json").read_text())["sets"]
    model = learned.classifier()
    assert model is not None, embeddings.missing()
    print(
        "| set | role | lines | rules: accuracy, macro-F1, negative recall "
        "| classifier alone | together | together: sure of, right when sure | wrong together |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, language in NAMES:
        with open(SETS / f"{name}.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        lines = [(r["text"], r.get("speaker") or None) for r in rows]
        expected = [r["label"] for r in rows]
        rules = [sentiment.label(sentiment.score(t, language, s)) for t, s in lines]
        p = model.probabilities(embeddings.embed([t for t, _s in lines]))
        alone = [sentiment.LABELS[i] for i in p.argmax(axis=1)]
        together = [
            None if r.score is None else sentiment.label(r.score)
            for r in learned.read(lines, language)
        ]
        sure = [(e, g) for e, g in zip(expected, together, strict=True) if g is not None]
        right_sure = sum(e == g for e, g in sure) / len(sure) if sure else 0.0
        wrong = Counter(
            f"{e} → {g or 'uncertain'}" for e, g in zip(expected, together, strict=True) if e != g
        )
        role = "training" if name in trained_on else "**held out**"
        print(
            f"| {name} | {role} | {len(rows)} "
            f"| {figures(list(zip(expected, rules, strict=True)))} "
            f"| {figures(list(zip(expected, alone, strict=True)))} "
            f"| {figures(list(zip(expected, together, strict=True)))} "
            f"| {len(sure) / len(rows):.0%}, {right_sure:.1%} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(wrong.items())) or 'none'} |"
        )
    print(f"\nthreshold {model.threshold}; classes {sentiment.LABELS}")


if __name__ == "__main__":
    main()
