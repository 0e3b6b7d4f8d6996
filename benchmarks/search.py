"""Search benchmark: 100 000 conversations with generated transcripts, keyword + filter queries.

Run:  .venv/bin/python -m benchmarks.search                       # SQLite (FTS5)
      scripts/test-services.sh .venv/bin/python -m benchmarks.search --postgres

Generates N conversations (default 100 000) with transcripts of 8–80 contact-centre sentences
(the English and Indonesian sentences of tests/data/sentiment plus templated ones with names,
products, order numbers and amounts; about 290 words on average), 50 agents in 10 queues, dates
over a year, sentiment and agent talk share. Builds the search index the way processing does
(one document per conversation), then times `search.find` — count, first page of 25 and
snippets, as the list page and the API call it — for keyword + filter queries, as an
administrator and as an agent (scoped), 20 runs each; and beside it a naive `LIKE` scan of the
transcripts for the same words. Results go to benchmarks/results/search-<dialect>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text

from tests.support import fresh_database_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SENTENCES = ROOT / "tests" / "data" / "sentiment"
NAMES = ["Helen", "Marcus", "Rina", "Budi", "Siti", "Daniel", "Maria", "Agus", "Dewi", "Tom"]
PRODUCTS = [
    "wireless speaker",
    "laptop",
    "router",
    "phone case",
    "smart watch",
    "printer",
    "television",
    "headphones",
    "modem",
    "blender",
    "Zenbook charger",
    "kulkas",
]
TEMPLATES = [
    "Thank you for calling, my name is {name}, how can I help you today?",
    "I ordered a {product} last week and it arrived damaged.",
    "Could you please give me your order number?",
    "Sure, the order number is {number}.",
    "I can see the {product} was delivered on {day}.",
    "I would like a refund of {amount} dollars please.",
    "Let me transfer you to my supervisor.",
    "Your replacement {product} will ship tomorrow.",
    "Is there anything else I can help you with?",
    "Terima kasih sudah menelepon, saya {name}, ada yang bisa saya bantu?",
    "Saya mau pengembalian dana untuk {product} yang rusak.",
    "Nomor pesanan saya {number}.",
    "Baik, saya cek dulu status pengiriman {product} Anda.",
]


def sentence_bank() -> list[str]:
    bank = list(TEMPLATES)
    for name in ("en.tsv", "en-heldout.tsv", "id.tsv", "id-heldout.tsv"):
        with open(SENTENCES / name, encoding="utf-8") as f:
            bank += [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    return bank


def transcript(rng: random.Random, bank: list[str]) -> str:
    return " ".join(
        rng.choice(bank).format(
            name=rng.choice(NAMES),
            product=rng.choice(PRODUCTS),
            number=rng.randrange(100000, 999999),
            day=rng.choice(["Monday", "Tuesday", "Friday", "Senin", "Jumat"]),
            amount=rng.randrange(5, 900),
        )
        for _ in range(rng.randint(8, 80))
    )


def stored_transcript(body: str) -> str:
    """BODY as the stored transcript's JSON: a line per sentence, agent and customer in turn,
    each word 0.35 s."""
    segments, clock = [], 0.0
    for n, sentence in enumerate(re.split(r"(?<=[.?!])\s+", body)):
        words = []
        for token in sentence.split():
            words.append(
                {"text": token, "start_s": round(clock, 2), "end_s": round(clock + 0.3, 2)}
            )
            clock += 0.35
        if words:
            speaker = "agent" if n % 2 == 0 else "customer"
            segments.append(
                {
                    "speaker": speaker,
                    "start_s": words[0]["start_s"],
                    "end_s": words[-1]["end_s"],
                    "text": sentence,
                    "words": words,
                }
            )
        clock += 0.8
    return json.dumps(segments, separators=(",", ":"))


def generate(ctx, count: int, seed: int = 7, stored: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """Write COUNT conversations with analysis, a session and a search document each (and,
    STORED, the transcript's JSON as processing keeps it)."""
    from callscope.db.models import (
        Agent,
        Conversation,
        ConversationAnalysis,
        ConversationSession,
        Queue,
    )
    from callscope.governance import auth

    rng = random.Random(seed)
    bank = sentence_bank()
    postgres = ctx.db.engine.dialect.name == "postgresql"
    today = datetime(2026, 11, 24, tzinfo=UTC)
    words = 0
    with ctx.db.session() as session:
        queues = [Queue(name=f"Queue {i}") for i in range(10)]
        agents = [Agent(external_id=f"AG-{i}", name=f"Agent {i}") for i in range(50)]
        session.add_all(queues + agents)
        session.flush()
        auth.add_user(session, "bench-admin", "admin", "benchmark password")
        auth.add_user(session, "bench-agent", "agent", "benchmark password", "AG-7")
        queue_ids, agent_ids = [q.id for q in queues], [a.id for a in agents]
    index_sql = text(
        "INSERT INTO conversation_search (conversation_id, body) VALUES (:id, :body)"
        if postgres
        else "INSERT INTO conversation_search (rowid, body) VALUES (:id, :body)"
    )
    batch = 5000
    for first in range(1, count + 1, batch):
        ids = range(first, min(first + batch, count + 1))
        convs, results, sessions, docs = [], [], [], []
        for i in ids:
            start = today - timedelta(seconds=rng.randrange(365 * 86400))
            duration = rng.randint(60, 1800)
            agent = agent_ids[i % len(agent_ids)]
            convs.append(
                {
                    "id": i,
                    "external_id": f"BENCH-{i:06d}",
                    "channel": "voice",
                    "status": "closed",
                    "primary_agent_id": agent,
                    "queue_id": queue_ids[(i // 5) % len(queue_ids)],
                    "started_at": start,
                    "ended_at": start + timedelta(seconds=duration),
                    "duration_s": float(duration),
                    "consent_status": "granted",
                    "processing_status": "processed",
                    "legal_hold": False,
                    "metadata_json": {},
                    "created_at": start,
                    "modified_on": start,
                }
            )
            score = rng.uniform(-1, 1)
            label = "positive" if score > 0.05 else "negative" if score < -0.05 else "neutral"
            results.append(
                {
                    "conversation_id": i,
                    "language": "en",
                    "sentiment_score": score,
                    "sentiment_label": label,
                    "agent_talk_pct": rng.uniform(20, 80),
                    "switches": rng.randint(4, 80),
                    "customer_sentiment": rng.uniform(-1, 1),
                    "customer_trend": rng.uniform(-1, 1),
                    "non_talk_s": rng.uniform(0, 120),
                    "sentiment": {},
                    "metrics": {},
                    "computed_at": start,
                }
            )
            sessions.append(
                {
                    "conversation_id": i,
                    "position": 0,
                    "agent_id": agent,
                    "role": "primary",
                    "started_at": start,
                    "ended_at": start + timedelta(seconds=duration),
                }
            )
            body = transcript(rng, bank)
            if i % 9973 == 0:  # a word ten conversations have
                body += " The tracking code is QX7731."
            if stored:
                results[-1]["transcript"] = stored_transcript(body)
            words += body.count(" ") + 1
            docs.append({"id": i, "body": body})
        with ctx.db.session() as session:
            session.execute(insert(Conversation), convs)
            session.execute(insert(ConversationAnalysis), results)
            session.execute(insert(ConversationSession), sessions)
            session.execute(index_sql, docs)
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if postgres:  # as autovacuum leaves a live database: visibility map and statistics
            conn.execute(text("SELECT setval('conversations_id_seq', :n)"), {"n": count})
            conn.execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(
                text("INSERT INTO conversation_search(conversation_search) VALUES('optimize')")
            )
            conn.execute(text("ANALYZE"))
    return {"conversations": count, "words": words, "mean_words": round(words / count)}


QUERIES = [
    # name, user, filters
    ("common word", "bench-admin", {"q": "refund"}),
    ("two words + queue", "bench-admin", {"q": "damaged speaker", "queue_name": "Queue 3"}),
    (
        "phrase + last 30 days",
        "bench-admin",
        {"q": '"order number"', "start": date(2026, 10, 25), "end": date(2026, 11, 24)},
    ),
    ("Indonesian + negative", "bench-admin", {"q": "pengembalian dana", "sentiment": "negative"}),
    (
        "word + duration + talk share",
        "bench-admin",
        {
            "q": "supervisor",
            "min_duration_s": 300,
            "min_agent_talk_pct": 40,
            "max_agent_talk_pct": 60,
        },
    ),
    ("rare word", "bench-admin", {"q": "qx7731"}),
    ("agent, common word", "bench-agent", {"q": "refund"}),
    (
        "agent, word + date range",
        "bench-agent",
        {"q": "replacement", "start": date(2026, 6, 1), "end": date(2026, 8, 31)},
    ),
    (
        "filters only",
        "bench-admin",
        {"agent_external_id": "AG-3", "start": date(2026, 1, 1), "sentiment": "positive"},
    ),
]


def percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
    }


def measure(ctx, runs: int) -> list[dict]:  # type: ignore[no-untyped-def]
    from callscope.db.models import User
    from callscope.review import search

    postgres = ctx.db.engine.dialect.name == "postgresql"
    out = []
    for name, username, filters in QUERIES:
        times, naive, total = [], [], None
        for _ in range(runs):
            with ctx.db.session() as session:
                user = session.scalar(select(User).where(User.username == username))
                started = time.perf_counter()
                results = search.find(session, user, search.Filters(**filters), limit=25)
                times.append((time.perf_counter() - started) * 1000)
                total = results.total
        if filters.get("q"):
            words = search.terms(filters["q"])
            like = " AND ".join(
                f"body {'ILIKE' if postgres else 'LIKE'} :w{i}" for i in range(len(words))
            )
            key = "conversation_id" if postgres else "rowid"
            for _ in range(max(3, runs // 4)):
                with ctx.db.session() as session:
                    started = time.perf_counter()
                    session.execute(
                        text(f"SELECT count(*) FROM conversation_search WHERE {like}"),
                        {f"w{i}": f"%{w}%" for i, w in enumerate(words)},
                    ).scalar()
                    session.execute(
                        text(f"SELECT {key} FROM conversation_search WHERE {like} LIMIT 25"),
                        {f"w{i}": f"%{w}%" for i, w in enumerate(words)},
                    ).all()
                    naive.append((time.perf_counter() - started) * 1000)
        row = {"query": name, "user": username, "matches": total, **percentiles(times)}
        if naive:
            row["naive_like"] = percentiles(naive)
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
        corpus["build_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(corpus), flush=True)
        rows = measure(ctx, args.runs)
        dialect = ctx.db.engine.dialect.name
        ctx.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"search-{dialect}.json").write_text(
        json.dumps({"corpus": corpus, "queries": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
