"""The labelled set for search by meaning (tests/data/meaning): lines of contact-centre calls
in English and Indonesian, each with the topic it is about ("none": greetings, checks, holds),
and queries a supervisor might type, each with the topic whose lines answer it. Scored as
callscope searches: the lines and the query as review/meaning.py stores and compares them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from callscope.measures import embeddings
from callscope.review import meaning

SET = Path(__file__).parent / "data" / "meaning"
TOP = 10


def read(name: str) -> list[dict[str, str]]:
    with (SET / f"{name}.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def as_searched(texts: list[str]) -> np.ndarray:
    """TEXTS as review/meaning.py compares them: int8, then unit length."""
    stored = np.stack(
        [np.frombuffer(b, np.int8) for b in meaning.quantised(embeddings.embed(texts))]
    ).astype(np.float32)
    return stored / np.linalg.norm(stored, axis=1, keepdims=True)


def score(lines_name: str = "lines", queries_name: str = "queries") -> dict[str, float]:
    """Recall@10 (the share of a query's answering lines among the ten closest, up to ten),
    the same for lines in the other language, hit@1 and mean reciprocal rank, over every query;
    and the similarities of answering and other lines (their medians and the others' 95th and
    99th percentiles)."""
    lines, queries = read(lines_name), read(queries_name)
    similar = as_searched([q["text"] for q in queries]) @ as_searched([x["text"] for x in lines]).T
    recall, across, first, reciprocal, answering, others = [], [], [], [], [], []
    for q, row in zip(queries, similar, strict=True):
        ranked = list(np.argsort(-row))
        good = {i for i, x in enumerate(lines) if x["topic"] == q["topic"]}
        other_language = {i for i in good if lines[i]["language"] != q["language"]}
        top = set(ranked[:TOP])
        recall.append(len(good & top) / min(TOP, len(good)))
        across.append(len(other_language & top) / len(other_language))
        first.append(float(ranked[0] in good))
        reciprocal.append(1 / (1 + next(r for r, i in enumerate(ranked) if i in good)))
        answering += [row[i] for i in good]
        others += [row[i] for i in range(len(lines)) if i not in good]
    return {
        "queries": len(queries),
        "lines": len(lines),
        "recall_at_10": float(np.mean(recall)),
        "recall_at_10_other_language": float(np.mean(across)),
        "hit_at_1": float(np.mean(first)),
        "mrr": float(np.mean(reciprocal)),
        "answering_median": float(np.median(answering)),
        "others_median": float(np.median(others)),
        "others_p95": float(np.percentile(others, 95)),
        "others_p99": float(np.percentile(others, 99)),
        "answering_over_floor": float(np.mean(np.array(answering) >= meaning.FLOOR)),
        "others_over_floor": float(np.mean(np.array(others) >= meaning.FLOOR)),
    }


def by_example(similarity: float, lines_name: str = "lines") -> dict[str, float]:
    """Categories by example on the labelled lines: for each topic, a category whose examples
    are its first English and first Indonesian line, matched (at SIMILARITY, the greatest to an
    example) against every other line; precision and recall over all topics together."""
    lines = read(lines_name)
    searched = as_searched([x["text"] for x in lines])
    hits = misses = wrong = 0
    for topic in sorted({x["topic"] for x in lines} - {"none"}):
        examples = [
            next(i for i, x in enumerate(lines) if x["topic"] == topic and x["language"] == lang)
            for lang in ("en", "id")
        ]
        similar = (searched @ searched[examples].T).max(axis=1)
        for i, x in enumerate(lines):
            if i in examples:
                continue
            matched, wanted = similar[i] >= similarity, x["topic"] == topic
            hits += matched and wanted
            misses += wanted and not matched
            wrong += matched and not wanted
    return {
        "precision": round(hits / max(1, hits + wrong), 3),
        "recall": round(hits / max(1, hits + misses), 3),
        "matched": int(hits + wrong),
    }


def theme_purity(lines_name: str = "lines") -> dict[str, float]:
    """Themes (review/themes.py) of the customers' lines about a reason, as if each were a
    call's reason: purity (each theme counted by its commonest reason) and how many themes."""
    from callscope.review import themes

    reasons = [x for x in read(lines_name) if x["topic"] != "none" and x["speaker"] == "customer"]
    labels, centres = themes.grouped(as_searched([x["text"] for x in reasons]))
    commonest = 0
    for theme in range(len(centres)):
        topics = [reasons[i]["topic"] for i in np.flatnonzero(labels == theme)]
        commonest += max(topics.count(t) for t in set(topics))
    return {
        "reasons": len(reasons),
        "reasons_kinds": len({x["topic"] for x in reasons}),
        "themes": len(centres),
        "purity": round(commonest / len(reasons), 3),
    }
