"""Search by meaning: quality on the labelled set, what storing each line's meaning adds to
processing, and speed on 100 000 stored calls.

Run:  .venv/bin/python -m benchmarks.meaning                       # quality, cost, SQLite
      scripts/test-services.sh .venv/bin/python -m benchmarks.meaning --postgres --no-cost

- **Quality** (tests/meaning_set.py): the 48 queries and 126 lines of tests/data/meaning, and
  categories by example on the same lines at several similarities; and the same for round 2
  (28 queries, 66 lines), written after the method was frozen.
- **Cost**: the two shipped demo calls processed by a warm worker; beside each, the time to embed
  the lines that only searching needs (those the sentiment rules decide, which the classifier
  never reads) and to store them as vectors.
- **Scale**: N calls (default 100 000, as benchmarks/search.py makes them) with 8–50 lines each;
  each line's vector is that of a real contact-centre sentence (the sentiment and meaning sets,
  embedded once) moved by a little noise, so the lines cluster as real ones do. Times the first
  search of a fresh process (the copy read from the database), then `search.find` with
  `like` for queries of the labelled set, as an administrator (with and without filters) and as
  an agent who sees 1 call in 50, 20 runs each; themes of a queue's quarter and of every
  call's month, 3 runs each; and reading one new call into the copy.
Results go to benchmarks/results/meaning-<dialect>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, text

from benchmarks.search import generate, percentiles, sentence_bank
from tests import meaning_set
from tests.support import DEMO_CALLS, fresh_database_url, make_meta, make_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
QUERIES = [
    # name, user, like, filters
    ("English", "bench-admin", "customer wants to cancel", {}),
    ("Indonesian", "bench-admin", "minta pengembalian dana", {}),
    ("English + queue", "bench-admin", "internet not working", {"queue_name": "Queue 3"}),
    (
        "Indonesian + last 30 days",
        "bench-admin",
        "tagihan dobel",
        {"start": date(2026, 10, 25), "end": date(2026, 11, 24)},
    ),
    ("meaning + words", "bench-admin", "asks to speak to a supervisor", {"q": "refund"}),
    ("agent (1 call in 50)", "bench-agent", "lost or stolen card", {}),
]


def quality() -> dict:
    from callscope.review import categories

    scored = meaning_set.score()
    scored["by_example"] = {
        f"{similarity:.2f}": meaning_set.by_example(similarity)
        for similarity in (0.25, 0.30, categories.SIMILARITY, 0.40, 0.45, 0.50)
    }
    held_out = meaning_set.score("lines-round2", "queries-round2")  # (written after freezing)
    held_out["by_example"] = {
        f"{similarity:.2f}": meaning_set.by_example(similarity, "lines-round2")
        for similarity in (0.30, categories.SIMILARITY, 0.40)
    }
    scored["round2"] = held_out
    scored["theme_purity"] = meaning_set.theme_purity()
    held_out["theme_purity"] = meaning_set.theme_purity("lines-round2")
    print(json.dumps({"quality": scored}), flush=True)
    return scored


def cost(model_dir: Path) -> list[dict]:
    """Each demo call processed by a warm worker, and the part of it that storing meaning
    added: embedding the lines the classifier does not read, and quantising every line."""
    from callscope.context import Context
    from callscope.db.models import Segment
    from callscope.measures import embeddings, sentiment
    from callscope.processing import jobs, pipeline
    from callscope.processing.ingest import Ingestor
    from callscope.review import meaning

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(make_settings(Path(tmp), model_dir=model_dir))
        pipeline.warm_up(ctx.settings)
        embeddings.embed(["warm"])
        for name, language in (
            ("synthetic_en_stereo.wav", "en"),
            ("synthetic_id_stereo.wav", "id"),
        ):
            meta = make_meta()
            meta["recording"]["language"] = language
            result = Ingestor(ctx).ingest_file(DEMO_CALLS / name, meta)
            started = time.perf_counter()
            assert jobs.run_job(ctx, result.job, "bench") == "processed"
            processing = time.perf_counter() - started
            with ctx.db.session() as session:
                lines = session.execute(
                    select(Segment.text, Segment.speaker).where(
                        Segment.conversation_id == result.id
                    )
                ).all()
            texts = sorted({t for t, _s in lines})
            ruled = sorted({t for t, s in lines if sentiment.ruled(t, language, s) is not None})
            timed = []
            for _ in range(5):
                started = time.perf_counter()
                if ruled:
                    embeddings.embed(ruled)
                meaning.quantised(embeddings.embed(texts[:1]).repeat(len(texts), axis=0))
                timed.append(time.perf_counter() - started)
            added = float(np.median(timed))
            row = {
                "call": name,
                "lines": len(lines),
                "lines_only_search_needs": len(ruled),
                "processing_s": round(processing, 2),
                "added_s": round(added, 3),
                "added_pct": round(100 * added / processing, 2),
                "stored_bytes": len(lines) * meaning.DIMENSIONS,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        ctx.close()
    return rows


def bank() -> tuple[list[str], np.ndarray]:
    """Real contact-centre sentences and their embeddings."""
    from callscope.measures import embeddings

    texts = sorted(
        {*sentence_bank(), *(x["text"] for x in meaning_set.read("lines"))}
        - {t for t in sentence_bank() if "{" in t}
    )
    return texts, embeddings.embed(texts)


def add_lines(ctx, calls: int, seed: int = 11) -> int:  # type: ignore[no-untyped-def]
    """Give each of the CALLS calls 8–50 lines with vectors; how many lines in all."""
    from callscope.db.models import Segment
    from callscope.review import meaning

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    texts, vectors = bank()
    pending: list[dict] = []
    choices: list[int] = []
    written = 0

    def flush() -> None:
        moved = vectors[choices] + noise.normal(0, 0.01, (len(choices), vectors.shape[1]))
        for row, stored in zip(pending, meaning.quantised(moved.astype(np.float32)), strict=True):
            row["meaning"] = stored
        with ctx.db.session() as session:
            session.execute(insert(Segment), pending)
        pending.clear()
        choices.clear()

    for call in range(1, calls + 1):
        for position in range(rng.randint(8, 50)):
            pick = rng.randrange(len(texts))
            choices.append(pick)
            pending.append(
                {
                    "conversation_id": call,
                    "position": position,
                    "speaker": "agent" if position % 2 == 0 else "customer",
                    "start_s": 4.0 * position,
                    "end_s": 4.0 * position + 3.5,
                    "text": texts[pick],
                }
            )
            written += 1
        if len(pending) >= 50_000:
            flush()
    if pending:
        flush()
    return written


def scale(calls: int, runs: int, postgres: bool) -> dict:
    from callscope.config import Settings
    from callscope.context import Context
    from callscope.db.models import Queue, User
    from callscope.governance import policy
    from callscope.review import meaning, search, themes

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database_url() if postgres else ""
        ctx = Context.open(Settings(data_dir=Path(tmp), database_url=url))
        started = time.perf_counter()
        corpus = generate(ctx, calls)
        corpus["lines"] = add_lines(ctx, calls)
        with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
        with ctx.db.session() as session:
            policy.set_value(session, "recordings.enabled", True)
        corpus["build_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(corpus), flush=True)
        query = meaning.vector("customer wants to cancel")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with ctx.db.session() as session:
            started = time.perf_counter()
            meaning.closest(session, query, 10)
            first = {
                "first_search_s": round(time.perf_counter() - started, 2),
                "copy_mb": round(meaning._copy(session).vectors.nbytes / 2**20),
                "peak_rss_growth_mb": round(
                    (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
                ),
            }
        print(json.dumps(first), flush=True)
        out = []
        for name, username, like, filters in QUERIES:
            times, total = [], None
            for _ in range(runs):
                with ctx.db.session() as session:
                    user = session.scalar(select(User).where(User.username == username))
                    started = time.perf_counter()
                    results = search.find(
                        session, user, search.Filters(like=like, **filters), limit=25
                    )
                    times.append((time.perf_counter() - started) * 1000)
                    total = results.total
            row = {"query": name, "user": username, "calls": total, **percentiles(times)}
            print(json.dumps(row), flush=True)
            out.append(row)
        first["themes"] = []
        for queue, days in (("Queue 3", 91), (None, 30)):  # a queue's quarter; every call's month
            times = []
            for _ in range(3):
                with ctx.db.session() as session:
                    user = session.scalar(select(User).where(User.username == "bench-admin"))
                    queue_id = session.scalar(select(Queue.id).where(Queue.name == queue))
                    started = time.perf_counter()
                    found = themes.themes(
                        session, user, queue_id, date(2026, 11, 24) - timedelta(days=days - 1),
                        date(2026, 11, 24),
                    )  # fmt: skip
                    times.append(time.perf_counter() - started)
            row = {
                "themes_of": f"{queue or 'every queue'}, {days} days",
                "calls": found.calls,
                "themes": len(found.themes),
                "median_s": round(statistics.median(times), 2),
                "worst_s": round(max(times), 2),
            }
            print(json.dumps(row), flush=True)
            first["themes"].append(row)
        add_lines(ctx, 1, seed=99)  # (a call's lines, as processing writes them)
        with ctx.db.session() as session:
            started = time.perf_counter()
            meaning.closest(session, query, 10)
            first["next_search_after_a_new_call_ms"] = round(
                (time.perf_counter() - started) * 1000, 1
            )
        dialect = ctx.db.engine.dialect.name
        ctx.close()
    return {"dialect": dialect, "corpus": corpus, "copy": first, "queries": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-cost", action="store_true", help="skip processing the demo calls")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="use the server of TEST_POSTGRES_URL (scripts/test-services.sh)",
    )
    args = parser.parse_args()
    report: dict = {"quality": quality()}
    if not args.no_cost:
        with tempfile.TemporaryDirectory() as models:
            report["cost"] = cost(Path(models))
    report["scale"] = scale(args.conversations, args.runs, args.postgres)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"meaning-{report['scale']['dialect']}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
