"""The one door for derived data: after a change through every writer of a call (import,
processing state, swapping speakers, recomputing, a category applied, an evaluation, a purge,
a deletion), each read model (stored transcript, search index, category matches, scorecard
cells) equals one rebuilt from nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from callscope.context import Context
from callscope.db.models import (
    CategoryMatch,
    ConversationAnalysis,
    ScorecardCategoryCell,
    ScorecardCell,
)
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import results, retention
from callscope.processing.ingest import Ingestor
from callscope.review import categories, evaluations, refresh, scorecells
from tests.support import PASSWORD, make_meta, tone, write_wav

ACTOR = Actor.system("test")
LINES = [
    ("agent", "Thank you for calling, how can I help you today?"),
    ("customer", "I want a refund for the double charge on my bill."),
    ("agent", "I am sorry about that, let me check the refund for you."),
    ("customer", "Thank you, that is kind of you."),
]
FORM = {
    "name": "Refunds",
    "sections": [
        {
            "title": "Care",
            "questions": [
                {"id": "ask", "text": "Asked how to help", "type": "yes_no", "weight": 1}
            ],
        }
    ],
}


def webvtt(lines: list[tuple[str, str]]) -> bytes:
    cues = [
        f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 1:02d}.500\n<v.{who} {who}>{said}"
        for i, (who, said) in enumerate(lines)
    ]
    return ("WEBVTT\n\n" + "\n\n".join(cues) + "\n").encode()


def read_models(ctx: Context) -> dict[str, Any]:
    """Every read model of every call, as plain values."""
    with ctx.db.session() as session:
        key = "conversation_id" if session.get_bind().dialect.name == "postgresql" else "rowid"
        today = scorecells.week_of(datetime.now(UTC).date())
        scorecells.fresh(session, today - 30, today + 1)  # (every call's week, as a read would)
        found = {
            "transcripts": sorted(
                session.execute(
                    select(ConversationAnalysis.conversation_id, ConversationAnalysis.transcript)
                ).all()
            ),
            "search": sorted(
                session.execute(text(f"SELECT {key}, body FROM conversation_search")).all()
            ),
            "matches": sorted(
                (m.conversation_id, m.category_id, repr(m.matches))
                for m in session.scalars(select(CategoryMatch))
            ),
            "cells": sorted(
                repr({k: v for k, v in vars(c).items() if not k.startswith("_") and k != "id"})
                for table in (ScorecardCell, ScorecardCategoryCell)
                for c in session.scalars(select(table))
            ),
        }
        session.commit()
    return found


def rebuilt(ctx: Context) -> dict[str, Any]:
    with ctx.db.session() as session:
        refresh.rebuild(session)
        session.commit()
    return read_models(ctx)


def test_every_writer_leaves_the_read_models_as_a_rebuild_would(ctx: Context, tmp_path):
    audio = write_wav(tmp_path / "call.wav", [tone(9.0), tone(9.0, 330.0)])
    ingestor = Ingestor(ctx)
    ids = []
    for n in range(4):
        meta = ingestor.check_metadata(
            make_meta(started_at=(datetime.now(UTC) - timedelta(days=40 * n)).isoformat())
        )
        with audio.open("rb") as stream:
            upload = ingestor.spool(stream, audio.name)
        done = ingestor.import_transcript(webvtt(LINES[n % 2 :]), "vtt", meta, upload)
        ids.append(done.id)
    with ctx.db.session() as session:
        categories.add(session, ACTOR, "Refund", {"phrases": ["refund*"], "speaker": "customer"})
        session.commit()
    while categories.apply_next(ctx.db):
        pass
    assert read_models(ctx) == rebuilt(ctx)
    first = read_models(ctx)
    assert len(first["matches"]) == 4 and len(first["search"]) == 4 and first["cells"]

    with ctx.db.session() as session:
        results.swap_speakers(session, ids[0], ACTOR)  # the refund is now the agent's
        results.recompute(session, ids[1], ACTOR)
        form = evaluations.import_form(session, ACTOR, FORM)
        boss = auth.add_user(session, "boss", "admin", PASSWORD)
        evaluations.evaluate(session, ACTOR, boss, ids[2], form.id, {"ask": "yes"})
        session.commit()
    assert read_models(ctx) == rebuilt(ctx)
    assert read_models(ctx)["matches"] != first["matches"]

    with ctx.db.session() as session:
        policy.set_value(session, "retention.mode", "recordings")
        policy.set_value(session, "retention.days", 30)
        session.commit()
    purged = retention.purge_expired(ctx)
    assert len(purged.recordings) == 3
    assert read_models(ctx) == rebuilt(ctx)

    with ctx.db.session() as session:
        policy.set_value(session, "retention.mode", "conversations")
        session.commit()
    assert len(retention.purge_expired(ctx).conversations) == 3
    after = read_models(ctx)
    assert after == rebuilt(ctx)
    assert [row[0] for row in after["transcripts"]] == [ids[0]]
