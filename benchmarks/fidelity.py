"""Fidelity benchmark: each word on the speaker who said it, on calls through phone lines.

Run:  .venv/bin/python -m benchmarks.fidelity [--limit N] [--conditions K ...]

The corpus is generated, not stored: ten two-channel calls with known truth (the eight real
Harper Valley calls with human transcripts and the two synthetic demo calls, English and
Indonesian) put through a grid of line conditions (`tests.lines.Line`): crosstalk from −40 to
−10 dB, 0 to 150 ms late, one way and both ways, through the telephone band or clean; 8 and
16 kHz; G.711 mu-law and A-law, Opus, AMR-NB; a quiet caller; line noise. Each condition is
applied to five of the calls (60 calls), and each call is also read through the same line
without crosstalk, which is what it should read as.

Reported per condition (means over its calls): words on the right speaker; WER against the
truth, and the same without crosstalk; talk time of each side and the number of speaker
switches against the call without crosstalk; words kept against the call without crosstalk.
Results are printed as Markdown and written to benchmarks/results/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from callscope.config import Settings
from callscope.measures import metrics
from callscope.measures.segments import Word, build_segments
from callscope.speech import asr
from tests.evaluation import (
    kept,
    leaked,
    overlapped,
    speaker_accuracy,
    stereo_words,
    wer,
)
from tests.lines import Line, on_line, truth_calls

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SPEAKERS = ("agent", "customer")


GRID = [
    Line(-40, 0),
    Line(-30, 20),
    Line(-20, 40),
    Line(-20, 80, both_ways=False, codec="alaw"),
    Line(-15, 150, rate=16000, codec="pcm"),
    Line(-10, 10),
    Line(-10, 60, both_ways=False, band=False, rate=16000, codec="pcm"),
    Line(-20, 40, codec="opus"),
    Line(-20, 30, codec="amr"),
    Line(-20, 50, caller_db=-25),
    Line(-20, 40, snr_db=10),
    Line(-15, 100, rate=16000, codec="opus", snr_db=30),
]
PER_CONDITION = 5


def corpus() -> list[tuple[int, str, Line]]:
    """(condition index, call, line): each condition on PER_CONDITION calls, in rotation."""
    names = list(truth_calls())
    return [
        (k, names[(k * PER_CONDITION + i) % len(names)], line)
        for k, line in enumerate(GRID)
        for i in range(PER_CONDITION)
    ]


def said(words: list[Word], speaker: str) -> str:
    return " ".join(w.text for w in words if w.speaker == speaker)


def measures(words: list[Word], turns: list[dict]) -> dict:
    m = metrics.compute(build_segments(words))
    return {
        "words": {s: sum(1 for w in words if w.speaker == s) for s in SPEAKERS},
        "wer": wer(
            [" ".join(t["text"] for t in turns if t["speaker"] == s) for s in SPEAKERS],
            [said(words, s) for s in SPEAKERS],
        ),
        "right": speaker_accuracy(words, turns),
        "talk_time_s": m["talk_time_s"],
        "switches": m["switches"]["count"],
        "longest_customer_s": m["longest_customer_monologue"]["duration_s"],
    }


def compare(heard_words: list[Word], clean_words: list[Word], turns: list[dict]) -> dict:
    """A call with crosstalk against the same call without it."""
    heard, clean = measures(heard_words, turns), measures(clean_words, turns)

    def off(a: float | None, b: float | None) -> float | None:
        return abs((a or 0) - (b or 0)) / b if b else None

    both = overlapped(clean_words)
    return {
        **heard,
        "leaked": len(leaked(heard_words, clean_words)) / max(len(heard_words), 1),
        "wer_clean": clean["wer"],
        "right_clean": clean["right"],
        "talk_time_off": {
            s: off(heard["talk_time_s"][s], clean["talk_time_s"][s]) for s in SPEAKERS
        },
        "switches_clean": clean["switches"],
        "kept": {
            s: kept(heard_words, [w for w in clean_words if w.speaker == s]) for s in SPEAKERS
        },
        "overlap": {"words": len(both), "kept": kept(heard_words, both)},
    }


def run(selected: list[tuple[int, str, Line]]) -> list[dict]:
    calls = truth_calls()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    transcriber = asr.transcriber(settings)
    transcriber.warm_up()
    clean: dict[tuple[str, Line], list[Word]] = {}
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for k, name, line in selected:
            path, turns, language = calls[name]

            def read(line: Line, path: Path = path, language: str = language) -> list[Word]:
                made = on_line(path, line, Path(folder) / "call.wav")
                return stereo_words(transcriber, made, language)

            if (name, line.clean()) not in clean:
                clean[name, line.clean()] = read(line.clean())
            started = time.perf_counter()
            heard = read(line)
            row = {"condition": k, "line": line.name, "call": name,
                   "seconds": round(time.perf_counter() - started, 1),
                   **compare(heard, clean[name, line.clean()], turns)}  # fmt: skip
            results.append(row)
            print(f"{line.name:52} {name:20} leaked {row['leaked']:.3f} "
                  f"WER {row['wer']:.3f} (clean {row['wer_clean']:.3f}) "
                  f"kept {row['kept']}", flush=True)  # fmt: skip
    return results


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def report(results: list[dict]) -> str:
    lines = [
        "| line | calls | other side's words (max) | WER | WER without crosstalk "
        "| talk time off, agent / caller (max) | words kept, agent / caller (min) "
        "| overlapped words kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in sorted({r["condition"] for r in results}):
        rows = [r for r in results if r["condition"] == k]
        worst_time = [max(r["talk_time_off"][s] or 0 for r in rows) for s in SPEAKERS]
        least_kept = [min(r["kept"][s] or 0 for r in rows) for s in SPEAKERS]
        overlap = sum(r["overlap"]["words"] for r in rows)
        overlap_kept = sum(r["overlap"]["words"] * (r["overlap"]["kept"] or 0) for r in rows)
        lines.append(
            f"| {rows[0]['line']} | {len(rows)} "
            f"| {_pct(_mean([r['leaked'] for r in rows]))} "
            f"({_pct(max(r['leaked'] for r in rows))}) "
            f"| {_pct(_mean([r['wer'] for r in rows]))} "
            f"| {_pct(_mean([r['wer_clean'] for r in rows]))} "
            f"| {_pct(worst_time[0])} / {_pct(worst_time[1])} "
            f"| {_pct(least_kept[0])} / {_pct(least_kept[1])} "
            f"| {_pct(overlap_kept / overlap if overlap else None)} of {overlap} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", nargs="*", type=int, help="indices into the grid")
    parser.add_argument("--limit", type=int, help="calls per condition")
    parser.add_argument("--report", type=Path, help="print the report of a saved results file")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())["calls"]))
        return
    selected = [
        (k, name, line)
        for k, name, line in corpus()
        if args.conditions is None or k in args.conditions
    ]
    if args.limit:
        selected = [c for c in selected if sum(1 for d in selected[: selected.index(c)]
                                               if d[0] == c[0]) < args.limit]  # fmt: skip
    results = run(selected)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fidelity.json").write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {platform.processor() or '?'}",
                "grid": [asdict(line) for line in GRID],
                "calls": results,
            },
            indent=1,
        )  # fmt: skip
    )
    print(report(results))


if __name__ == "__main__":
    main()
