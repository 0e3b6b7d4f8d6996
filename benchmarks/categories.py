"""Applying categories to stored calls: 50 categories over 100 000 conversations.

Run:  scripts/test-services.sh .venv/bin/python -m benchmarks.categories --postgres
      .venv/bin/python -m benchmarks.categories                      # SQLite

Generates the conversations of benchmarks/search.py with their stored transcripts (a line per
sentence, agent and customer in turn), adds 50 categories — phrases (whole words, prefixes,
phrases of several words, English and Indonesian), some for one speaker or the first or last
seconds, some that match by absence and some by a condition alone — and times matching every
stored call against them, as the workers do after categories are added (`categories apply`).
Results go to benchmarks/results/categories-<dialect>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.search import RESULTS, generate
from tests.support import fresh_database_url

PHRASES = [
    "refund*",
    "order number",
    "supervisor",
    "damaged",
    "replacement",
    "terima kasih",
    "pengembalian dana",
    "nomor pesanan",
    "laptop",
    "router",
    "printer",
    "headphones",
    "kulkas",
    "wireless speaker",
    "smart watch",
    "tracking code",
    "transfer you",
    "anything else",
    "how can i help",
    "ada yang bisa saya bantu",
    "cek dulu",
    "rusak",
    "disappoint*",
    "thank*",
    "sorry",
    "maaf",
    "cancel*",
    "complain*",
    "manager",
    "charge*",
]


def definitions() -> list[tuple[str, dict]]:
    found = [(f"Said: {p}", {"phrases": [p]}) for p in PHRASES]
    found += [
        (
            "Agent greeting",
            {
                "phrases": ["thank you for calling", "terima kasih sudah menelepon"],
                "speaker": "agent",
                "first_s": 30,
            },
        ),
        (
            "Customer asks refund",
            {"phrases": ["refund*", "pengembalian dana"], "speaker": "customer"},
        ),
        ("Closing offer", {"phrases": ["anything else"], "speaker": "agent", "last_s": 60}),
        ("Order number early", {"phrases": ["order number", "nomor pesanan"], "first_s": 60}),
        ("Supervisor late", {"phrases": ["supervisor"], "last_s": 120}),
        ("Names product", {"phrases": ["laptop", "router", "printer", "modem", "blender"]}),
        ("Money", {"phrases": ["dollar*", "rupiah", "refund of"]}),
        ("Transfer", {"phrases": ["transfer you", "transfer"], "speaker": "agent"}),
        ("Indonesian call", {"phrases": ["saya", "anda", "bapak", "ibu"]}),
        ("Escalation", {"phrases": ["speak to a manager", "supervisor"], "speaker": "customer"}),
    ]
    found += [
        (
            "No disclosure",
            {"phrases": ["recorded"], "speaker": "agent", "first_s": 30, "absent": True},
        ),
        (
            "No apology",
            {"phrases": ["sorry", "apolog*", "maaf"], "speaker": "agent", "absent": True},
        ),
        ("No greeting", {"phrases": ["thank you for calling"], "first_s": 20, "absent": True}),
        ("No thanks", {"phrases": ["thank*", "terima kasih"], "last_s": 60, "absent": True}),
        ("No name", {"phrases": ["my name is"], "absent": True}),
    ]
    found += [
        ("Negative customer", {"conditions": {"customer_sentiment": "negative"}}),
        ("Positive customer", {"conditions": {"customer_sentiment": "positive"}}),
        ("Falling", {"conditions": {"customer_trend": "falling"}}),
        ("Long silence", {"conditions": {"non_talk_over_s": 60}}),
        ("Interrupted", {"conditions": {"interruptions_at_least": 3}}),
    ]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="the server of TEST_POSTGRES_URL")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from callscope.config import Settings
    from callscope.context import Context
    from callscope.db.models import CategoryMatch
    from callscope.governance.audit import Actor
    from callscope.review import categories

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database_url() if args.postgres else ""
        ctx = Context.open(Settings(data_dir=Path(tmp), database_url=url))
        started = time.perf_counter()
        corpus = generate(ctx, args.conversations, stored=True)
        corpus["build_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(corpus), flush=True)
        rules = definitions()
        with ctx.db.session() as session:
            for name, fields in rules:
                categories.add(session, Actor.cli(), name, fields)
        started = time.perf_counter()
        steps = 0
        while (step := categories.apply_step(ctx.db)) is not None:
            steps += 1
            if steps % 20 == 0:
                print(
                    f"{step[0]} / {step[1]} calls, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
        took = time.perf_counter() - started
        with ctx.db.session() as session:
            matches = session.scalar(select(func.count()).select_from(CategoryMatch))
        dialect = ctx.db.engine.dialect.name
        ctx.close()
    result = {
        "corpus": corpus,
        "categories": len(rules),
        "apply_s": round(took, 1),
        "calls_per_s": round(args.conversations / took),
        "matches": matches,
    }
    print(json.dumps(result), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"categories-{dialect}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
