"""Diarization benchmark: speaker separation and agent/customer roles on single-channel calls.

Run:  .venv/bin/python -m benchmarks.diarization

- Diarization error rate (DER) of `diarization.diarize` on the pyannote sample against its RTTM
  reference, without a collar and with NIST's 0.25 s collar.
- Speaker-attributed word accuracy of whole-pipeline processing (a fresh data folder, no
  voiceprints, so roles come from what is said): the share of recognised words whose role
  (agent/customer) is right. Truth: the reference turns of commercial_mono and katiesteve_mono
  (words aligned by text), and the channels of the stereo calls, processed as mono mixdowns
  (each word belongs to the louder channel over its span). katiesteve_mono is two colleagues,
  not agent and customer: it is scored with the better of the two role mappings.
- Time `diarize` adds per minute of audio, and what learning the agent's voiceprint adds to
  a stereo call.

Results are printed as Markdown and written to benchmarks/results/diarization.json.
"""

from __future__ import annotations

import json
import platform
import re
import tempfile
import time
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import Conversation
from callscope.processing import jobs
from callscope.processing.ingest import Ingestor
from callscope.review.document import document
from callscope.speech import diarization, media
from tests.evaluation import diarization_error, mixdown, rttm_turns

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "callscope" / "demo" / "calls"
TESTS = ROOT / "tests" / "data"
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ROOT / ".bench-models"

# name: (file, language, truth: "ref" turns | "channels" of the stereo original)
CALLS = {
    "commercial_mono": (DEMO / "commercial_mono.wav", "en", "ref"),
    "katiesteve_mono": (TESTS / "calls" / "katiesteve_mono.wav", "en", "ref"),
    "synthetic_en_stereo (mixdown)": (DEMO / "synthetic_en_stereo.wav", "en", "channels"),
    "synthetic_id_stereo (mixdown)": (DEMO / "synthetic_id_stereo.wav", "id", "channels"),
    "auto_repairs_40 (mixdown)": (
        DEMO / "auto_repairs_40_stereo_agentL_customerR.wav",
        "en",
        "channels",
    ),
}
REF_ROLES = {"CUSTOMER": "customer", "AGENT": "agent", "GUEST-1": "customer", "GUEST-2": "agent"}
ROLE_WORDS = {True: "right", False: "WRONG", None: "n/a"}
ROLELESS = {"katiesteve_mono"}  # two colleagues: which one is "the agent" has no answer


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def words_of(doc: dict) -> list[tuple[str, float, float, str]]:
    return [
        (w["text"], w["start_s"], w["end_s"], seg["speaker"])
        for seg in doc["transcript"]["segments"]
        for w in seg["words"]
    ]


def truth_from_reference(name: str, words: list) -> list[str | None]:
    """Each word's role from the reference turns, by aligning the texts."""
    ref = []
    for line in (TESTS / "calls" / f"{name}.ref.txt").read_text().splitlines():
        label, _, text = line.partition(":")
        if label in REF_ROLES:
            ref += [(t, REF_ROLES[label]) for t in tokens(text)]
    ours = [(i, t) for i, w in enumerate(words) for t in tokens(w[0])[:1]]
    truth: list[str | None] = [None] * len(words)
    matcher = SequenceMatcher(None, [t for _, t in ours], [t for t, _ in ref], autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            truth[ours[a + k][0]] = ref[b + k][1]
    return truth


def truth_from_channels(stereo: np.ndarray, rate: int, words: list) -> list[str | None]:
    """Each word's role: the louder channel over its span (agent left, customer right)."""
    truth = []
    for _text, start, end, _role in words:
        lo, hi = int(start * rate), max(int(end * rate), int(start * rate) + 1)
        left, right = (float(np.sqrt(np.mean(np.square(ch[lo:hi])))) for ch in stereo)
        truth.append("agent" if left >= right else "customer")
    return truth


def main() -> None:
    results: dict = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
    sample = TESTS / "speech" / "pyannote_sample.wav"
    audio, _ = media.decode(sample, sample_rate=media.SAMPLE_RATE)
    diarization.diarize(audio[0])  # load the encoder once
    started = time.perf_counter()
    found = diarization.diarize(audio[0])
    took = time.perf_counter() - started
    reference = rttm_turns(sample.with_suffix(".rttm"))
    results["pyannote_sample"] = {
        "speakers": len(found.voices),
        "collar_0": diarization_error(reference, found.turns),
        "collar_0.25": diarization_error(reference, found.turns, collar=0.25),
        "diarize_s": took,
    }

    stereo, _ = media.decode(CALLS["synthetic_en_stereo (mixdown)"][0])
    started = time.perf_counter()
    diarization.voice_of(stereo[0], diarization.speech_spans(stereo[0]), 100)
    results["voiceprint_s_per_stereo_call"] = time.perf_counter() - started

    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = MODELS if MODELS.exists() else folder / "models"
        ctx = Context.open(Settings(data_dir=folder / "data", model_dir=models))
        for name, (path, language, truth_kind) in CALLS.items():
            stereo, rate = media.decode(path)
            mono_path = mixdown(path, folder) if truth_kind == "channels" else path
            mono, _ = media.decode(mono_path, sample_rate=media.SAMPLE_RATE)
            started = time.perf_counter()
            diarization.diarize(mono[0])
            diarize_s = time.perf_counter() - started
            meta = {
                "external_id": name,
                "recording": {"language": language},
                "sessions": [
                    {"agent": {"external_id": f"AG-{name}"}, "started_at": "2026-11-20T14:00:00Z"}
                ],
            }
            result = Ingestor(ctx).ingest_file(mono_path, meta)
            assert jobs.run_job(ctx, result.job, "benchmark") == "processed"
            with ctx.db.session() as session:
                doc = document(session, session.get(Conversation, result.id))
            words = words_of(doc)
            truth = (
                truth_from_channels(stereo, rate, words)
                if truth_kind == "channels"
                else truth_from_reference(name.split()[0], words)
            )
            scored = [(w[3], t) for w, t in zip(words, truth, strict=True) if t is not None]
            right = sum(ours == t for ours, t in scored) / len(scored)
            duration = mono.shape[1] / media.SAMPLE_RATE
            calls[name] = {
                "duration_s": round(duration, 1),
                "words_scored": len(scored),
                "words_total": len(words),
                "role_accuracy": right,
                "best_mapping_accuracy": max(right, 1 - right),
                "agent_role_right": None if name in ROLELESS else right >= 0.5,
                "speakers": doc["speakers"],
                "diarize_s_per_audio_min": diarize_s / duration * 60,
            }
        ctx.close()
    results["calls"] = calls
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diarization.json").write_text(json.dumps(results, indent=2) + "\n")

    p = results["pyannote_sample"]
    print("| DER on pyannote_sample | missed | false alarm | confusion | DER |")
    print("|---|---|---|---|---|")
    for key in ("collar_0", "collar_0.25"):
        e = p[key]
        print(
            f"| {key.replace('_', ' ')} s | {e['missed']:.1%} | {e['false_alarm']:.1%} |"
            f" {e['confusion']:.1%} | **{e['der']:.1%}** |"
        )
    learning = results["voiceprint_s_per_stereo_call"]
    print(f"\nLearning an agent's voice from a stereo call: {learning:.2f} s")
    print()
    print(
        "| call | audio s | words scored | role right | best mapping | agent role | method"
        " (confidence) | diarize s per audio min |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, c in calls.items():
        sp = c["speakers"]
        print(
            f"| {name} | {c['duration_s']} | {c['words_scored']}/{c['words_total']} |"
            f" {'–' if name in ROLELESS else format(c['role_accuracy'], '.1%')} |"
            f" {c['best_mapping_accuracy']:.1%} |"
            f" {ROLE_WORDS[c['agent_role_right']]} |"
            f" {sp['method']} ({sp['confidence']:.2f}), {sp['speakers']} speakers |"
            f" {c['diarize_s_per_audio_min']:.2f} |"
        )


if __name__ == "__main__":
    main()
