"""How well the call summary finds why they called, how it ended, the action items (with their
owner) and the questions, on the labelled calls in tests/data/summary, in English and
Indonesian. The rules were built in rounds: each round's calls were written after the rules were
frozen and scored once, then joined the calls the next rules were built on. Round 0 is the first
development set (the two demo calls' scripts and calls written for this); the highest round is
the held-out set of the current rules.

An expected item is a piece of the sentence that should be found (for the outcome, one of
several where a reader would accept either); a found item counts when its text holds that
piece (and, for action items, the owner is right).

Run:  .venv/bin/python -m benchmarks.summary
"""

from __future__ import annotations

from typing import Any

from tests.summary_set import held_out, scored, totals


def table(rows: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}\n")
    print(
        "| language | calls | reason right | outcome right | action items P / R | questions P / R |"
    )
    print("|---|---|---|---|---|---|")
    for language in ("en", "id", None):
        some = [r for r in rows if language is None or r["language"] == language]
        t = totals(some)
        print(
            f"| {language or 'both'} | {t['calls']} | {t['reason']:.0%} | {t['outcome']:.0%} | "
            f"{t['action_precision']:.0%} / {t['action_recall']:.0%} | "
            f"{t['question_precision']:.0%} / {t['question_recall']:.0%} |"
        )


def main() -> None:
    rows = scored()
    for row in rows:
        print(row)
    last = held_out(rows)
    for n in range(last + 1):
        role = "held out" if n == last else "development"
        table([r for r in rows if r["round"] == n], f"round {n} ({role})")


if __name__ == "__main__":
    main()
