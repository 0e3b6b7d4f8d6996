"""Throughput: calls processed per hour by one and by two `callscope worker` processes.

Run:  .venv/bin/python -m benchmarks.throughput [--copies 3]

Ingests the four shipped demo calls COPIES times each (stereo English and Indonesian, a real
8 kHz stereo call and a mono call; 9.6 minutes of audio per set), then starts the given number
of `callscope worker` processes on the same data dir and times until every job is processed.
With two workers each gets one CPU thread for speech recognition (CALLSCOPE_ASR_THREADS=1), so
the two cores are shared, not oversubscribed. The model is assembled before timing starts.
Results go to benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "callscope" / "demo"
RESULTS = ROOT / "benchmarks" / "results"


def run(workers: int, copies: int) -> dict:
    from callscope.config import Settings
    from callscope.context import Context
    from callscope.db.models import Job, Recording
    from callscope.processing.ingest import Ingestor
    from callscope.speech import asr

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), model_dir=ROOT / ".bench-models")
        asr.resolve_model(settings.asr_model, settings.model_cache_dir)  # once, untimed
        ctx = Context.open(settings)
        calls = json.loads((DEMO / "calls.json").read_text())
        for copy in range(copies):
            for call in calls:
                meta = {
                    **call["metadata"],
                    "external_id": f"{call['metadata']['external_id']}-{copy}",
                }
                Ingestor(ctx).ingest_file(DEMO / call["audio"], meta)
        with ctx.db.session() as session:
            count = session.scalar(select(func.count()).select_from(Job))
            audio_s = session.scalar(select(func.sum(Recording.duration_s)))
        env = {
            **os.environ,
            "CALLSCOPE_DATA_DIR": tmp,
            "CALLSCOPE_MODEL_DIR": str(settings.model_dir),
            "CALLSCOPE_ASR_THREADS": "1" if workers > 1 else "0",
        }
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "callscope", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            while True:
                with ctx.db.session() as session:
                    done = session.scalar(
                        select(func.count()).where(Job.status.in_(("processed", "failed")))
                    )
                    failed = session.scalar(select(func.count()).where(Job.status == "failed"))
                if done == count:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
        ctx.close()
    return {
        "workers": workers,
        "calls": count,
        "failed": failed,
        "audio_minutes": round(audio_s / 60, 1),
        "seconds": round(elapsed, 1),
        "calls_per_hour": round(count / elapsed * 3600),
        "audio_hours_per_hour": round(audio_s / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for workers in (1, 2):
        row = run(workers, args.copies)
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
