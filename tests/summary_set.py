"""The labelled calls of the call summary (tests/data/summary) and how a summary is scored
against them: the measuring kit of tests/test_summary.py and benchmarks/summary.py.

An expected item is a piece of the sentence that should be found (for the outcome, one of
several where a reader would accept either); a found item counts when its text holds that
piece (and, for action items, the owner is right)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callscope.measures import summary
from callscope.measures.segments import Segment, Word

SET = Path(__file__).resolve().parent / "data" / "summary"
WORD_S, GAP_S = 0.3, 0.6  # the labelled calls have no times: each word takes 0.3 s


def lines_of(turns: list[list[str]]) -> list[Segment]:
    """The turns (speaker, text) as lines of timed words."""
    lines, clock = [], 0.0
    for speaker, text in turns:
        words = []
        for token in text.split():
            words.append(Word(speaker, clock, clock + WORD_S, token))
            clock += WORD_S
        lines.append(Segment.of(words))
        clock += GAP_S
    return lines


def _holds(item: dict[str, Any] | None, expected: str | list[str] | None) -> bool:
    """ITEM holds the expected piece (or one of them, where a reader would accept several)."""
    if item is None or expected is None:
        return item is None and expected is None
    pieces = [expected] if isinstance(expected, str) else expected
    return any(piece.lower() in item["text"].lower() for piece in pieces)


def score(path: Path) -> dict[str, Any]:
    """What the summary of one labelled call got right."""
    case = json.loads(path.read_text(encoding="utf-8"))
    expected = case["expected"]
    found = summary.summarise(lines_of(case["turns"]))
    actions = [(a["owner"], a["text"].lower()) for a in found["action_items"]]
    wanted = [(owner, piece.lower()) for owner, piece in expected["action_items"]]
    questions = [q["text"].lower() for q in found["questions"]]
    asked = [piece.lower() for piece in expected["questions"]]
    return {
        "call": path.stem,
        "round": case["round"],
        "language": case["language"],
        "reason": _holds(found["reason"], expected["reason"]),
        "outcome": _holds(found["outcome"], expected["outcome"]),
        "actions_found": len(actions),
        "actions_right": sum(any(o == w and p in t for w, p in wanted) for o, t in actions),
        "actions_expected": len(wanted),
        "actions_recalled": sum(any(o == w and p in t for o, t in actions) for w, p in wanted),
        "questions_found": len(questions),
        "questions_right": sum(any(p in q for p in asked) for q in questions),
        "questions_expected": len(asked),
        "questions_recalled": sum(any(p in q for q in questions) for p in asked),
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Precision, recall and the share of calls right, over ROWS."""

    def ratio(a: str, b: str) -> float:
        den = sum(r[b] for r in rows)
        return sum(r[a] for r in rows) / den if den else 1.0

    return {
        "calls": len(rows),
        "reason": sum(r["reason"] for r in rows) / len(rows),
        "outcome": sum(r["outcome"] for r in rows) / len(rows),
        "action_precision": ratio("actions_right", "actions_found"),
        "action_recall": ratio("actions_recalled", "actions_expected"),
        "question_precision": ratio("questions_right", "questions_found"),
        "question_recall": ratio("questions_recalled", "questions_expected"),
    }


def scored() -> list[dict[str, Any]]:
    """Every labelled call, scored."""
    return [score(path) for path in sorted(SET.glob("*.json"))]


def held_out(rows: list[dict[str, Any]]) -> int:
    """The round written after the current rules were frozen."""
    return max(r["round"] for r in rows)
