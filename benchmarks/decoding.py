"""Decoding options of the bundled model on the synthetic calls: word error rate and time.

Run:  .venv/bin/python -m benchmarks.decoding

Each channel is brought to callscope's speech level and transcribed with callscope's voice
activity settings; only the decoding options differ. The hint variants give the recogniser
the names a custom vocabulary would hold (faster-whisper's `hotwords`, or Whisper's prompt).
Results are printed as Markdown and written to benchmarks/results/decoding.json.
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.processing import CALLS, RESULTS, SPEAKERS
from tests.evaluation import truth_turns, wer

HINTS = {
    "synthetic_en_stereo": "Northwind Electronics, Maria Lopez",
    "synthetic_id_stereo": "Bank Sejahtera, Rina, Budi Santoso, kartu debit, memblokir",
}
HINTED = ("hotwords", "initial_prompt")
VARIANTS: dict[str, dict[str, Any]] = {
    "beam 1 (default)": {"beam_size": 1},
    "beam 5": {"beam_size": 5},
    "beam 1, hints as hotwords": {"beam_size": 1, "hotwords": "{hints}"},
    "beam 5, hints as hotwords": {"beam_size": 5, "hotwords": "{hints}"},
    "beam 1, hints as prompt": {"beam_size": 1, "initial_prompt": "{hints}"},
    "beam 5, no temperature fallback": {"beam_size": 5, "temperature": 0.0},
    "beam 5, conditioned on previous text": {"beam_size": 5, "condition_on_previous_text": True},
}


def main() -> None:
    from callscope.config import load_settings
    from callscope.speech import asr, media

    settings = load_settings()
    model = asr.transcriber(settings).model
    rows = []
    for name, hints in HINTS.items():
        path, language = CALLS[name]
        audio, _rate = media.decode(path, sample_rate=media.SAMPLE_RATE)
        turns = truth_turns(name) or []
        refs = [" ".join(t["text"] for t in turns if t["speaker"] == s) for s in SPEAKERS]
        for label, options in VARIANTS.items():
            filled = {k: v.format(hints=hints) if k in HINTED else v for k, v in options.items()}
            options = {"condition_on_previous_text": False, **filled}
            started = time.perf_counter()
            hyps = []
            for channel in audio:
                segments, _info = model.transcribe(
                    asr.normalised(channel),
                    language=language,
                    vad_filter=True,
                    vad_parameters=asr.transcriber(settings).speech_finder,
                    **options,
                )
                hyps.append(" ".join(s.text.strip() for s in segments))
            rows.append(
                {
                    "call": name,
                    "variant": label,
                    "wer": wer(refs, hyps),
                    "seconds": time.perf_counter() - started,
                }
            )
            print(f"{name} {label}: {rows[-1]['wer']:.1%}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decoding.json").write_text(json.dumps(rows, indent=2))
    print("| call | decoding | WER | seconds (channels in turn) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['call']} | {r['variant']} | {r['wer']:.1%} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
