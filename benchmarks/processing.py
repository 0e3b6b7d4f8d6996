"""Processing benchmark: speed per stage, peak memory, accuracy and words kept on the shipped
calls, and on two of them with the caller's side made quiet and coded as a phone line codes it.

Run:  .venv/bin/python -m benchmarks.processing [--calls NAME ...] [--no-plain]

Each call is processed in a fresh process (so peak RSS is that call's), by callscope with its
default settings, and by the plain use of faster-whisper a user would write without callscope
(WhisperModel with its defaults, each channel in turn: beam 5, no VAD). Results are printed as
Markdown and written to benchmarks/results/processing-beamN.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.evaluation import (
    doc_words,
    normalise,
    quiet_caller,
    speaker_accuracy,
    truth_turns,
    truth_words,
    wer,
)
from tests.lines import REAL_CALLS, real_call, real_turns

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "callscope" / "demo" / "calls"
TESTS = ROOT / "tests" / "data" / "calls"
RESULTS = ROOT / "benchmarks" / "results"

MADE = ROOT / ".bench-data" / "calls"
CALLS = {
    "synthetic_en_stereo": (DEMO / "synthetic_en_stereo.wav", "en"),
    "synthetic_id_stereo": (DEMO / "synthetic_id_stereo.wav", "id"),
    "commercial_mono": (DEMO / "commercial_mono.wav", "en"),
    "katiesteve_mono": (TESTS / "katiesteve_mono.wav", "en"),
    "auto_repairs_40_stereo": (DEMO / "auto_repairs_40_stereo_agentL_customerR.wav", "en"),
    "auto0_mono_u8": (TESTS / "auto0_mono_u8.wav", "en"),
    # the caller's side 20 dB quieter, both sides at 8 kHz through G.711 mu-law (made by quiet)
    "auto_repairs_40_quiet_caller": (MADE / "auto_repairs_40_quiet_caller.wav", "en"),
    "synthetic_id_quiet_caller": (MADE / "synthetic_id_quiet_caller.wav", "id"),
    # real two-party calls, 8 kHz stereo, with human transcripts (tests/data/calls/hvb)
    **{f"hvb_{name}": (real_call(name), "en") for name in REAL_CALLS},
}
QUIET = {
    "auto_repairs_40_quiet_caller": "auto_repairs_40_stereo",
    "synthetic_id_quiet_caller": "synthetic_id_stereo",
}
QUIET_DB = -20.0


def quiet(name: str) -> None:
    """Make the quiet-caller version NAME of a shipped stereo call."""
    MADE.mkdir(parents=True, exist_ok=True)
    quiet_caller(CALLS[QUIET[name]][0], CALLS[name][0], QUIET_DB)


def turns_of(name: str) -> list[dict] | None:
    """Who said what when in a call, where the project knows it."""
    if name.startswith("hvb_"):
        return real_turns(name.removeprefix("hvb_"))
    return truth_turns(name)


def references(name: str) -> list[str] | None:
    """Reference transcripts of a call: one per speaker (agent, customer) where the truth says
    who spoke, else one for the whole call; None where the project ships no reference."""
    turns = turns_of(name)
    if turns:
        return [" ".join(t["text"] for t in turns if t["speaker"] == s) for s in SPEAKERS]
    ref = TESTS / f"{name}.ref.txt"
    if not ref.exists():
        return None
    lines = [ln for ln in ref.read_text().splitlines() if ln and not ln.startswith("#")]
    if name == "commercial_mono":  # the first line is the full published text
        return [lines[0]]
    return [" ".join(ln.split(":", 1)[1] for ln in lines if ":" in ln)]


SPEAKERS = ("agent", "customer")
# --- the two measured runs, each in its own process ----------------------------------------


def run_callscope(name: str, warm: bool) -> dict:
    """Ingest and process one call with callscope's defaults; stage timings and the document.

    WARM first loads the models as a starting worker does, so that loading them is not
    counted.
    """
    from callscope.config import load_settings
    from callscope.context import Context
    from callscope.db.models import Conversation
    from callscope.processing import jobs, pipeline
    from callscope.processing.ingest import Ingestor
    from callscope.review.document import document

    path, language = CALLS[name]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings().model_copy(
            update={"data_dir": Path(tmp), "model_dir": ROOT / ".bench-models"}
        )
        ctx = Context.open(settings)

        def meta(external_id: str) -> dict:
            return {
                "external_id": external_id,
                "recording": {"language": language},
                "sessions": [
                    {"agent": {"external_id": "AG-1"}, "started_at": "2026-11-20T14:00:00Z"}
                ],
            }

        if warm:
            pipeline.warm_up(settings)
        t0 = time.perf_counter()
        result = Ingestor(ctx).ingest_file(path, meta(name))
        ingest_s = time.perf_counter() - t0
        marks: list[tuple[str, float]] = []

        def progress(_percent: float, stage: str | None) -> None:
            if stage and (not marks or marks[-1][0] != stage):
                marks.append((stage, time.perf_counter()))

        t1 = time.perf_counter()
        status = jobs.run_job(ctx, result.job, "bench", progress=progress)
        process_s = time.perf_counter() - t1
        stages: dict[str, float] = {}
        for (stage, at), (_next, until) in zip(marks, marks[1:], strict=False):
            stages[stage] = stages.get(stage, 0.0) + until - at
        with ctx.db.session() as session:
            doc = document(session, session.get(Conversation, result.id))
        ctx.close()
    return {
        "status": status,
        "ingest_s": ingest_s,
        "process_s": process_s,
        "stages": stages,
        "document": doc,
    }


def run_plain(name: str) -> dict:
    """faster-whisper as a user would call it: defaults, each channel in turn."""
    from faster_whisper import WhisperModel

    from callscope.speech import asr, media

    path, _language = CALLS[name]
    model_path = asr.resolve_model("base", ROOT / ".bench-models")
    t0 = time.perf_counter()
    model = WhisperModel(str(model_path))
    audio, _ = media.decode(path, sample_rate=16000)
    texts = []
    for channel in audio:
        segments, _info = model.transcribe(channel)
        texts.append(" ".join(s.text.strip() for s in segments))
    return {"process_s": time.perf_counter() - t0, "texts": texts}


def child(kind: str, name: str) -> dict:
    """Run one measurement in a fresh process and add its peak RSS and its wall time (from
    starting Python to its end: imports and loading the model included)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.processing", "--child", kind, name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def end_to_end(name: str, worker: bool = False) -> float:
    """Seconds `callscope ingest CALL --meta META --wait` takes in a fresh process, on a fresh
    data dir, the model already assembled. WORKER: with `callscope worker` running beside it
    (its models loaded), to which the command hands the job."""
    path, language = CALLS[name]
    with tempfile.TemporaryDirectory() as tmp:
        meta = Path(tmp) / "meta.json"
        meta.write_text(
            json.dumps(
                {
                    "external_id": name,
                    "recording": {"language": language},
                    "sessions": [
                        {"agent": {"external_id": "AG-1"}, "started_at": "2026-11-20T14:00:00Z"}
                    ],
                }
            )
        )
        env = {
            **os.environ,
            "CALLSCOPE_DATA_DIR": str(Path(tmp) / "data"),
            "CALLSCOPE_MODEL_DIR": str(ROOT / ".bench-models"),
        }
        command = [sys.executable, "-m", "callscope", "ingest", str(path), "--meta", str(meta)]
        with running_worker(env) if worker else contextlib.nullcontext():
            t0 = time.perf_counter()
            subprocess.run([*command, "--wait"], cwd=ROOT, env=env, capture_output=True, check=True)
            return time.perf_counter() - t0


@contextlib.contextmanager
def running_worker(env: dict[str, str]) -> Iterator[None]:
    """`callscope worker` on ENV's data dir, from when it says its models are loaded."""
    from callscope.config import load_settings
    from callscope.context import Context
    from callscope.processing import presence

    subprocess.run([sys.executable, "-m", "callscope", "init"], env=env, check=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "callscope", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    settings = load_settings().model_copy(
        update={"data_dir": Path(env["CALLSCOPE_DATA_DIR"]), "model_dir": ROOT / ".bench-models"}
    )
    ctx = Context.open(settings)
    try:
        while not presence.ready_workers(ctx):
            if worker.poll() is not None:
                raise RuntimeError("the worker stopped before it was ready")
            time.sleep(0.2)
        yield
    finally:
        ctx.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def words_kept(doc: dict, plain_texts: list[str]) -> list[float]:
    """Words callscope returns per speaker ÷ words plain faster-whisper (no VAD) returns on the
    same channel (agent left, customer right); for a mono call, all words ÷ all words."""
    segs = doc["transcript"]["segments"]

    def count(text: str) -> int:
        return len(normalise(text).split())

    if len(plain_texts) == 1:
        ours = [" ".join(s["text"] for s in segs)]
    else:
        ours = [" ".join(s["text"] for s in segs if s["speaker"] == sp) for sp in SPEAKERS]
    return [count(o) / max(count(p), 1) for o, p in zip(ours, plain_texts, strict=True)]


# --- scoring ---------------------------------------------------------------------------------


def hypotheses(doc: dict, pieces: int) -> list[str]:
    """The transcript of a processed call, per speaker when the reference is per speaker."""
    segs = doc["transcript"]["segments"]
    if pieces == 1:
        return [" ".join(s["text"] for s in segs)]
    return [" ".join(s["text"] for s in segs if s["speaker"] == sp) for sp in SPEAKERS]


def per_speaker_wer(refs: list[str], doc: dict, plain: dict | None) -> dict:
    """WER of each speaker (agent, customer): callscope's, and plain faster-whisper's on that
    speaker's channel."""
    ours = hypotheses(doc, len(refs))
    return {
        speaker: {
            "callscope": wer([ref], [hyp]),
            "plain": wer([ref], [plain["texts"][i]]) if plain else None,
        }
        for i, (speaker, ref, hyp) in enumerate(zip(SPEAKERS, refs, ours, strict=True))
    }


def truth_metrics(name: str) -> dict | None:
    from callscope.measures import metrics
    from callscope.measures.segments import build_segments

    turns = turns_of(name) if not name.startswith("hvb_") else None
    return metrics.compute(build_segments(truth_words(turns))) if turns else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", nargs="*", default=list(CALLS))
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--report", type=Path, help="print the report of a saved results file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())["calls"]))
        return
    if args.child:
        kind, name = args.child
        if kind == "plain":
            result = run_plain(name)
        else:
            result = run_callscope(name, warm=kind == "warm")
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    from callscope.speech import media

    child("cold", "katiesteve_mono")  # assemble the model once, outside the measurements
    rows = []
    for name in args.calls:
        path, _language = CALLS[name]
        if name in QUIET:
            quiet(name)
        shipped = QUIET.get(name, name)
        duration = media.probe(path).duration_s
        ours = child("warm", name)
        cold = child("cold", name)
        e2e = end_to_end(name)
        handed = end_to_end(name, worker=True)
        plain = None if args.no_plain else child("plain", name)
        doc = ours["document"]
        refs = references(shipped)
        row = {
            "call": name,
            "duration_s": duration,
            "process_s": ours["process_s"],
            "rtf": ours["process_s"] / duration,
            "cold_s": cold["process_s"],
            "rtf_cold": cold["process_s"] / duration,
            "ingest_s": ours["ingest_s"],
            "stages_s": ours["stages"],
            "peak_rss_mb": ours["peak_rss_mb"],
            "end_to_end_s": e2e,
            "plain_s": plain["process_s"] if plain else None,
            "plain_wall_s": plain["wall_s"] if plain else None,
            "end_to_end_vs_plain": e2e / plain["wall_s"] if plain else None,
            "handed_s": handed,
            "handed_vs_plain": handed / plain["wall_s"] if plain else None,
            "words_kept": words_kept(doc, plain["texts"]) if plain else None,
            "plain_rss_mb": plain["peak_rss_mb"] if plain else None,
            "vs_plain": ours["process_s"] / plain["process_s"] if plain else None,
            "wer": wer(refs, hypotheses(doc, len(refs))) if refs else None,
            "plain_wer": (
                wer(refs, plain["texts"] if len(refs) > 1 else [" ".join(plain["texts"])])
                if refs and plain
                else None
            ),
            "attribution": (
                speaker_accuracy(doc_words(doc), turns_of(shipped)) if turns_of(shipped) else None
            ),
            "metrics": doc["metrics"],
            "truth_metrics": truth_metrics(shipped),
            "speaker_wer": per_speaker_wer(refs, doc, plain) if refs and len(refs) > 1 else None,
        }
        rows.append(row)
        print(f"{name}: rtf {row['rtf']:.3f}", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    beam = os.environ.get("CALLSCOPE_ASR_BEAM_SIZE", "1")
    (RESULTS / f"processing-beam{beam}.json").write_text(
        json.dumps({"machine": machine, "calls": rows}, indent=2)
    )
    print(report(rows))


def report(rows: list[dict]) -> str:
    def f(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    def kept(r: dict) -> str:
        return " / ".join(f"{k:.1%}" for k in r["words_kept"]) if r.get("words_kept") else "–"

    out = [
        "| call | audio s | RTF (warm worker) | end to end s | plain s | end to end ÷ plain | "
        "handed to a worker s | ÷ plain | "
        "peak RSS MB | WER | plain WER | words kept | words to right speaker |",
        "|" + "---|" * 13,
    ]
    for r in rows:
        out.append(
            f"| {r['call']} | {r['duration_s']:.1f} | {r['rtf']:.3f} | "
            f"{r['end_to_end_s']:.1f} | {f(r['plain_wall_s'], '.1f')} | "
            f"{f(r['end_to_end_vs_plain'], '.2f')} | "
            f"{f(r.get('handed_s'), '.1f')} | {f(r.get('handed_vs_plain'), '.2f')} | "
            f"{r['peak_rss_mb']:.0f} | {f(r['wer'], '.1%')} | {f(r['plain_wer'], '.1%')} "
            f"| {kept(r)} | {f(r['attribution'], '.1%')} |"
        )
    out += [
        "",
        "Stages (seconds): "
        + "; ".join(
            f"{r['call']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items())
            for r in rows
        ),
    ]
    speakers = [r for r in rows if r.get("speaker_wer")]
    if speakers:
        out += [
            "",
            "WER per speaker, callscope against plain faster-whisper on the same channel:",
            "",
            "| call | agent | plain agent | customer | plain customer |",
            "|---|---|---|---|---|",
        ]
        for r in speakers:
            w = r["speaker_wer"]
            out.append(
                f"| {r['call']} | {w['agent']['callscope']:.1%} | {f(w['agent']['plain'], '.1%')} "
                f"| {w['customer']['callscope']:.1%} | {f(w['customer']['plain'], '.1%')} |"
            )
    for r in rows:
        t, m = r["truth_metrics"], r["metrics"]
        if not t:
            continue
        out += [
            "",
            f"Metrics of {r['call']} against its truth:",
            "",
            "| metric | truth | callscope |",
            "|---|---|---|",
        ]
        for label, path in [
            ("agent talk s", ("talk_time_s", "agent")),
            ("customer talk s", ("talk_time_s", "customer")),
            ("switches", ("switches", "count")),
            ("longest customer monologue s", ("longest_customer_monologue", "duration_s")),
            ("average pause s", ("average_pause_s",)),
        ]:
            tv, mv = t, m
            for key in path:
                tv, mv = tv[key], mv[key]
            out.append(f"| {label} | {tv} | {mv} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
