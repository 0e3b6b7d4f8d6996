"""How to use two cores for a stereo call: three ways of transcribing both channels.

Run:  .venv/bin/python -m benchmarks.parallel

- sequential: one model with all threads, one channel after the other;
- batched: faster-whisper's BatchedInferencePipeline (batch 8), one channel after the other;
- parallel (callscope): one thread per worker, two workers, the channels at the same time.
Each way runs three times on synthetic_en_stereo, after a warm-up; the best time is printed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from faster_whisper import BatchedInferencePipeline, WhisperModel

from callscope.config import Settings
from callscope.speech import asr, media

ROOT = Path(__file__).resolve().parent.parent
CALL = ROOT / "src" / "callscope" / "demo" / "calls" / "synthetic_en_stereo.wav"
OPTIONS = {"language": "en", "beam_size": 1, "word_timestamps": True}


def best_of(runs: int, work) -> float:  # type: ignore[no-untyped-def]
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    settings = Settings(data_dir=ROOT / ".bench-data", model_dir=ROOT / ".bench-models")
    path = str(asr.resolve_model("base", settings.model_cache_dir))
    audio, _ = media.decode(CALL, sample_rate=media.SAMPLE_RATE)
    duration = audio.shape[1] / media.SAMPLE_RATE
    cores = os.cpu_count() or 1

    whole = WhisperModel(path, compute_type="int8", cpu_threads=cores)

    def sequential() -> None:
        for channel in audio:
            list(
                whole.transcribe(
                    channel, vad_filter=True, condition_on_previous_text=False, **OPTIONS
                )[0]
            )

    batched_model = BatchedInferencePipeline(whole)

    def batched() -> None:
        for channel in audio:
            list(batched_model.transcribe(channel, batch_size=8, **OPTIONS)[0])

    transcriber = asr.Transcriber(settings)

    def parallel() -> None:
        transcriber.transcribe_channels(list(audio), "en")

    print(f"{CALL.name}, {duration:.1f} s, {cores} cores")
    print("| way | seconds | RTF |")
    print("|---|---|---|")
    for name, work in [
        ("sequential", sequential),
        ("batched", batched),
        ("parallel (callscope)", parallel),
    ]:
        seconds = best_of(3, work)
        print(f"| {name} | {seconds:.2f} | {seconds / duration:.3f} |")


if __name__ == "__main__":
    main()
