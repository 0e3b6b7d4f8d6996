"""Upload benchmark: do slow and parallel uploads leave the pages and the API to everyone else?

Run:  .venv/bin/python -m benchmarks.uploads [--slow 16] [--parallel 20] [--seconds 20]

Serves a fresh data dir with `callscope serve --no-worker` (SQLite, or the PostgreSQL server
named by CALLSCOPE_TEST_POSTGRES), then in two phases measures, from other connections, how
long a signed-in page (the conversation list) and an API read (`GET /api/v1/conversations`
with a token) take, one after the other every 0.2 s:

- *slow*: SLOW uploads of a real recording, each trickling its bytes over SECONDS (a caller on
  a poor link), all open at once;
- *parallel*: PARALLEL uploads of the same recording sent at full speed at the same moment.

Prints p50 / p95 / worst per phase and what each upload was answered; writes
benchmarks/results/uploads-sqlite.json (or -postgresql.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

from tests.support import FORMATS, PASSWORD, make_meta, make_settings, serving

RESULTS = Path(__file__).resolve().parent / "results"
CALL = FORMATS / "whatstheweatherlike.wav"
BOUNDARY = "callscope-benchmark-boundary"


def body() -> bytes:
    """A multipart ingest body: metadata and the recording."""
    meta = json.dumps(make_meta(mono=True))
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="audio"; '
            f'filename="call.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        + CALL.read_bytes()
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def upload(base: str, token: str, seconds: float, answers: list[int]) -> None:
    """One upload, its body spread evenly over SECONDS (0: at once); its status in ANSWERS."""
    data = body()

    def trickle():
        pieces = 50 if seconds else 1
        step = -(-len(data) // pieces)
        for start in range(0, len(data), step):
            yield data[start : start + step]
            time.sleep(seconds / pieces)

    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(data)),
    }
    try:
        answer = httpx.post(
            f"{base}/api/v1/conversations", content=trickle(), headers=headers, timeout=300
        )
        answers.append(answer.status_code)
    except httpx.HTTPError:
        answers.append(0)


def watch(base: str, token: str, cookies: dict, stop: threading.Event) -> dict[str, list[float]]:
    """Times (ms) of the list page and the API list, each asked in turn until STOP."""
    took: dict[str, list[float]] = {"page": [], "api": []}
    while not stop.is_set():
        bearer = {"Authorization": f"Bearer {token}"}
        for kind, url, kwargs in (
            ("page", f"{base}/conversations", {"cookies": cookies}),
            ("api", f"{base}/api/v1/conversations", {"headers": bearer}),
        ):
            start = time.perf_counter()
            answer = httpx.get(url, timeout=60, **kwargs)
            took[kind].append((time.perf_counter() - start) * 1000)
            answer.raise_for_status()
        time.sleep(0.2)
    return took


def phase(base: str, token: str, cookies: dict, uploads: int, seconds: float) -> dict:
    answers: list[int] = []
    threads = [
        threading.Thread(target=upload, args=(base, token, seconds, answers))
        for _ in range(uploads)
    ]
    stop = threading.Event()
    watched: dict[str, list[float]] = {}
    watcher = threading.Thread(target=lambda: watched.update(watch(base, token, cookies, stop)))
    watcher.start()
    time.sleep(1)  # (a quiet second first: the figures include the server at rest)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took_s = time.perf_counter() - started
    stop.set()
    watcher.join()
    figures = {}
    for kind, times in watched.items():
        times.sort()
        figures[kind] = {
            "requests": len(times),
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "max_ms": round(times[-1], 1),
        }
    return {"uploads": uploads, "answers": sorted(answers), "took_s": round(took_s, 1), **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20, help="how long a slow upload takes")
    args = parser.parse_args()

    from callscope.context import Context
    from callscope.governance import auth

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        ctx = Context.open(make_settings(data))
        with ctx.db.session() as session:
            auth.add_user(session, "boss", "admin", PASSWORD)
            token = auth.create_token(session, "boss", "feed", "ingest")
        with serving(ctx.settings, data / "server.log") as base:
            login = httpx.get(f"{base}/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            form = {"username": "boss", "password": PASSWORD, "csrf_token": csrf[1] if csrf else ""}
            signed_in = httpx.post(f"{base}/login", data=form, cookies=login.cookies)
            cookies = dict(login.cookies) | dict(signed_in.cookies)
            results = {
                "slow": phase(base, token, cookies, args.slow, args.seconds),
                "parallel": phase(base, token, cookies, args.parallel, 0),
                "call": CALL.name,
                "database": ctx.settings.resolved_database_url.split(":", 1)[0],
                "machine": f"{os.cpu_count()} cores",
            }
        ctx.close()
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    kind = "postgresql" if results["database"].startswith("postgresql") else "sqlite"
    (RESULTS / f"uploads-{kind}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
