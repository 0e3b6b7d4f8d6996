"""PII redaction benchmark: recall on a built set of spoken personal data, English and Indonesian.

Run:  .venv/bin/python -m benchmarks.pii [--audio]

The set is `tests/pii_set.py: utterances()` (fixed seed): card, account, phone and national ID
numbers and e-mail addresses inside sentences as a recogniser writes them, and numbers that are
not personal data.

- recall: share of items whose every token lies inside a redacted span (the whole value hidden);
- type right: share of caught items given the right type;
- needless: share of the non-personal numbers that were redacted.

With --audio, the English and Indonesian sentences are also spoken by espeak-ng (Debian's
`espeak-ng`), transcribed by callscope's speech model and redacted: recall then includes the
recogniser's mistakes on synthetic voices. Results: benchmarks/results/pii.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from callscope.measures.segments import Word
from tests.pii_set import score, utterances

RESULTS = Path(__file__).resolve().parent / "results"


def audio_transcriber():
    from callscope.config import Settings
    from callscope.speech import asr, media

    folder = Path(tempfile.mkdtemp())
    models = Path(__file__).resolve().parent.parent / ".bench-models"
    model = asr.transcriber(
        Settings(data_dir=folder, model_dir=models if models.exists() else None)
    )
    voices = {"en": "en-us", "id": "id"}

    def transcribe(item: dict) -> list[Word]:
        wav = folder / "u.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voices[item["language"]],
                "-s",
                "150",
                "-w",
                str(wav),
                item["text"],
            ],
            check=True,
        )
        audio, _ = media.decode(wav, sample_rate=media.SAMPLE_RATE)
        words = model.transcribe_channels([audio[0]], item["language"])[0]
        return [Word("customer", w.start, w.end, w.text) for w in words]

    return transcribe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio", action="store_true", help="also speak, transcribe and redact")
    args = parser.parse_args()
    items = utterances()
    results = {}
    for language in ("en", "id"):
        subset = [i for i in items if i["language"] == language]
        results[f"text_{language}"] = score(subset)
        if args.audio:
            results[f"audio_{language}"] = score(subset, audio_transcriber())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pii.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print("| set | PII items | recall | type right | non-PII numbers | needlessly redacted |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['items']} | {r['recall']:.1%} | {r['type_right']:.1%} |"
            f" {r['non_pii_numbers']} | {r['needless']:.1%} |"
        )
    for name, r in results.items():
        for text in r["missed"]:
            print(f"missed ({name}): {text}")


if __name__ == "__main__":
    main()
