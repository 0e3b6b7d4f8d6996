"""Truth files of the synthetic calls and the measures taken against them (tests and benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

from callscope.segments import Word

TRUTH_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "calls"


def truth_turns(name: str) -> list[dict] | None:
    """The turns of a call's truth file (speaker, start, end, text), or None if it has none."""
    path = TRUTH_DIR / f"{name}.truth.json"
    return json.loads(path.read_text())["turns"] if path.exists() else None


def truth_words(turns: list[dict]) -> list[Word]:
    """Each turn's words, spread evenly over the turn (the truth gives turn times only)."""
    words = []
    for turn in turns:
        tokens = turn["text"].split()
        step = (turn["end"] - turn["start"]) / len(tokens)
        words += [
            Word(turn["speaker"], turn["start"] + i * step, turn["start"] + (i + 1) * step, token)
            for i, token in enumerate(tokens)
        ]
    return words


def speaker_accuracy(doc: dict, turns: list[dict]) -> float | None:
    """Share of transcript words whose speaker is the speaker of the truth turn around them."""
    right = total = 0
    for seg in doc["transcript"]["segments"]:
        for word in seg["words"]:
            mid = (word["start_s"] + word["end_s"]) / 2
            nearest = min(turns, key=lambda t: max(t["start"] - mid, mid - t["end"], 0.0))
            total += 1
            right += nearest["speaker"] == seg["speaker"]
    return right / total if total else None
