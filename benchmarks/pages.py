"""Page benchmark: a 60-minute stereo call, its conversation page and its analysis JSON.

Run:  .venv/bin/python -m benchmarks.pages [--minutes 60] [--requests 50]

Builds a stereo call of the given length by repeating the shipped stereo calls end to end,
ingests and processes it (that takes a few minutes), serves it with `callscope serve`, then
measures from another process: the server time of the conversation page and of its analysis
JSON (p50 / p95 over N sequential requests, each with a fresh connection), and in Debian's
Chromium the time from navigation until the page is usable (transcript rendered, player ready,
timeline drawn). Results are printed and written to benchmarks/results/pages.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np

from tests.support import launch_chromium

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "callscope" / "demo" / "calls"
RESULTS = ROOT / "benchmarks" / "results"
SOURCES = ["synthetic_en_stereo.wav", "auto_repairs_40_stereo_agentL_customerR.wav"]


def long_call(path: Path, minutes: float) -> None:
    """Write a stereo 16 kHz WAV of MINUTES by repeating the shipped stereo calls."""
    import wave

    from callscope.speech import media

    pieces = [media.decode(DEMO / name, sample_rate=16000)[0] for name in SOURCES]
    needed = int(minutes * 60 * 16000)
    chunks, total = [], 0
    while total < needed:
        for piece in pieces:
            chunks.append(piece)
            total += piece.shape[1]
    audio = np.concatenate(chunks, axis=1)[:, :needed]
    pcm = (np.clip(audio.T, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def timings(url: str, cookies: dict, n: int) -> dict:
    """p50 and p95 of N sequential GETs (milliseconds)."""
    samples = []
    for _ in range(n):
        with httpx.Client(cookies=cookies) as client:
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[int(0.95 * (len(samples) - 1))],
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from callscope.config import Settings
    from callscope.context import Context
    from callscope.governance import auth, policy
    from callscope.processing import jobs
    from callscope.processing.ingest import Ingestor

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        ctx = Context.open(Settings(data_dir=data, model_dir=ROOT / ".bench-models"))
        with ctx.db.session() as session:
            auth.add_user(session, "bench", "admin", "benchmark password")
            policy.set_value(session, "recordings.enabled", True)
        call = data / "long.wav"
        long_call(call, args.minutes)
        meta = {
            "external_id": "LONG-1",
            "recording": {"language": "en"},
            "sessions": [
                {
                    "agent": {"external_id": "AG-1", "name": "Bench Agent"},
                    "started_at": "2026-11-20T14:00:00Z",
                }
            ],
        }
        started = time.perf_counter()
        result = Ingestor(ctx).ingest_file(call, meta)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        assert jobs.run_job(ctx, result.job, "bench") == "processed"
        process_s = time.perf_counter() - started
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "CALLSCOPE_DATA_DIR": str(data)}
        server = subprocess.Popen(
            [sys.executable, "-m", "callscope", "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            time.sleep(3)
            login = httpx.post(
                base + "/login", data={"username": "bench", "password": "benchmark password"}
            )
            cookies = dict(login.cookies)
            page_t = timings(f"{base}/conversations/{result.id}", cookies, args.requests)
            json_t = timings(
                f"{base}/api/v1/conversations/{result.id}/analysis", cookies, args.requests
            )
            usable = []
            with sync_playwright() as p:
                browser = launch_chromium(p)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies(
                    [{"name": k, "value": v, "url": base} for k, v in cookies.items()]
                )
                for _ in range(5):
                    page = context.new_page()
                    start = time.perf_counter()
                    page.goto(f"{base}/conversations/{result.id}#details")
                    page.wait_for_function(
                        "document.querySelectorAll('#transcript .line').length > 0"
                        " && document.querySelector('#audio').readyState >= 1"
                    )
                    page.click("#fwd")
                    page.wait_for_function("document.querySelector('#audio').currentTime >= 30")
                    usable.append(time.perf_counter() - start)
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
        with ctx.db.session() as session:
            from callscope.db.models import Segment, Word

            segments = session.query(Segment).count()
            words = session.query(Word).count()
        ctx.close()
    report = {
        "minutes": args.minutes,
        "segments": segments,
        "words": words,
        "ingest_s": round(ingest_s, 1),
        "process_s": round(process_s, 1),
        "page": page_t,
        "analysis_json": json_t,
        "usable_s": {"median": statistics.median(usable), "max": max(usable)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pages.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
