"""Scorecards: 100 000 calls and 10 000 evaluations, by agent, queue and for everyone.

Run:  scripts/test-services.sh .venv/bin/python -m benchmarks.scorecards --postgres
      .venv/bin/python -m benchmarks.scorecards                      # SQLite

Generates the conversations of benchmarks/search.py (50 agents in 10 queues, a year of calls,
each with its figures), 10 000 submitted evaluations of random calls and 8 categories matched
on 3–30 % of the calls each; then times `GET /api/v1/scorecards` through the application (an
API token, as an integration or the page asks) for an agent's last 12 weeks and year, a queue's
year, every call of the year as an administrator, a supervisor's two queues and an agent's own
calls — 20 requests each, p50 and p95; and apart, the first request of each, which makes the
weekly cells not made yet (the first two queries make a year's; an agent's own are added up
from the calls); and every call of the year again, a call changed before each request.
Results go to benchmarks/results/scorecards-<dialect>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select, text

from benchmarks.search import RESULTS, generate, percentiles
from tests.support import fresh_database_url

EVALUATIONS = 10_000
CATEGORIES = [("Greeting", 0.3), ("Refund", 0.2), ("Escalation", 0.05), ("Apology", 0.25)]
CATEGORIES += [("Transfer", 0.08), ("Churn risk", 0.03), ("Upsell", 0.1), ("Hold", 0.15)]
YEAR = {"from": "2025-11-25", "to": "2026-11-24"}
QUERIES = [
    ("agent, 12 weeks", "bench-admin", {"agent": "AG-3", "to": "2026-11-24"}),
    ("agent, a year", "bench-admin", {"agent": "AG-3", **YEAR}),
    ("queue, a year", "bench-admin", {"queue": "Queue 4", **YEAR}),
    ("everyone, a year", "bench-admin", YEAR),
    ("supervisor of two queues, a year", "bench-sup", YEAR),
    ("agent's own, a year", "bench-agent", YEAR),
]


def add_quality(ctx, count: int, seed: int = 11) -> dict:  # type: ignore[no-untyped-def]
    """EVALUATIONS submitted evaluations of random calls among COUNT, and CATEGORIES matched."""
    from callscope.db.models import (
        Category,
        CategoryMatch,
        Evaluation,
        EvaluationForm,
        Queue,
        User,
        utcnow,
    )
    from callscope.governance import auth

    rng = random.Random(seed)
    with ctx.db.session() as session:
        form = EvaluationForm(name="Bench", version=1, definition={"sections": []})
        found = [
            Category(name=n, definition={}, version=1, applied_version=1) for n, _ in CATEGORIES
        ]
        session.add_all([form, *found])
        boss = auth.add_user(session, "bench-sup", "supervisor", "benchmark password")
        boss.queues = list(session.scalars(select(Queue).order_by(Queue.id).limit(2)))
        session.flush()
        admin = session.scalar(select(User.id).where(User.username == "bench-admin"))
        form_id, category_ids = form.id, [c.id for c in found]
    now = utcnow()
    rows = [
        {
            "conversation_id": conversation_id,
            "form_id": form_id,
            "evaluator_id": admin,
            "evaluator": "bench-admin",
            "status": "submitted",
            "answers": {},
            "automatic": {},
            "overrides": {},
            "comments": {},
            "score_pct": round(rng.uniform(40, 100), 1),
            "created_at": now,
        }
        for conversation_id in rng.sample(range(1, count + 1), min(EVALUATIONS, count // 10))
    ]
    matches = [
        {"conversation_id": i, "category_id": category_id, "matches": []}
        for category_id, (_name, share) in zip(category_ids, CATEGORIES, strict=True)
        for i in range(1, count + 1)
        if rng.random() < share
    ]
    with ctx.db.session() as session:
        session.execute(insert(Evaluation), rows)
        for first in range(0, len(matches), 20_000):
            session.execute(insert(CategoryMatch), matches[first : first + 20_000])
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text("VACUUM ANALYZE" if ctx.db.engine.dialect.name == "postgresql" else "ANALYZE")
        )
    return {"evaluations": len(rows), "category_matches": len(matches)}


def measure(ctx, runs: int) -> list[dict]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from callscope.governance import auth
    from callscope.review import scorecells
    from callscope.web.app import create_app

    with ctx.db.session() as session:
        tokens = {
            name: auth.create_token(session, name, "bench")
            for name in ("bench-admin", "bench-sup", "bench-agent")
        }
    out = []
    with TestClient(create_app(ctx)) as client:
        for name, user, params in QUERIES:
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            times, card = [], {}
            # (the first request may make the weekly cells: kept apart, as are the second's
            # warm caches)
            for _ in range(runs + 2):
                started = time.perf_counter()
                res = client.get("/api/v1/scorecards", params=params, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert res.status_code == 200, res.text
                card = res.json()
            row = {
                "query": name,
                "user": user,
                "first_ms": round(times[0], 1),
                "calls": card["calls"],
                "evaluations": card["evaluations"],
                "weeks": len(card["weeks"]),
                **percentiles(times[2:]),
            }
            print(json.dumps(row), flush=True)
            out.append(row)
        # a call changes (an evaluation, its results …) before each request: its week is made
        # again by the request
        headers = {"Authorization": f"Bearer {tokens['bench-admin']}"}
        times = []
        for i in range(runs):
            with ctx.db.session() as session:
                scorecells.mark(session, [1 + (i * 4999) % 100_000])
            started = time.perf_counter()
            assert client.get("/api/v1/scorecards", params=YEAR, headers=headers).status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        row = {"query": "everyone, a year, a call changed before each", **percentiles(times)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="use the server of TEST_POSTGRES_URL (scripts/test-services.sh)",
    )
    args = parser.parse_args()

    from callscope.config import Settings
    from callscope.context import Context

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database_url() if args.postgres else ""
        ctx = Context.open(Settings(data_dir=Path(tmp), database_url=url))
        started = time.perf_counter()
        corpus = generate(ctx, args.conversations)
        corpus.update(add_quality(ctx, args.conversations))
        corpus["build_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(corpus), flush=True)
        rows = measure(ctx, args.runs)
        dialect = ctx.db.engine.dialect.name
        ctx.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scorecards-{dialect}.json").write_text(
        json.dumps({"corpus": corpus, "queries": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
