"""Retention, legal hold and erasure: what goes, what stays, and that files follow rows."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text

from callscope.config import Settings
from callscope.context import Context
from callscope.db.models import (
    AuditEvent,
    CategoryMatch,
    Contact,
    Conversation,
    ConversationAnalysis,
    Recording,
    Segment,
)
from callscope.governance import auth, policy
from callscope.governance.audit import Actor
from callscope.processing import jobs, retention, worker
from callscope.processing.ingest import Ingestor
from callscope.processing.retention import ErasureError, recording_keys
from callscope.review import categories
from callscope.web.app import create_app
from tests.support import (
    DEMO_CALLS,
    FORMATS,
    PASSWORD,
    callscope,
    make_meta,
    plant_transcript,
    sign_in,
)

SHORT = FORMATS / "whatstheweatherlike.wav"


def meta_days_ago(days: int, customer: str = "CUST-77", **changes) -> dict:
    start = (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)
    meta = make_meta(mono=True, started_at=start.isoformat(), **changes)
    meta["customer"] = {"external_id": customer, "name": f"Name of {customer}"}
    meta["sessions"][0].update(
        started_at=start.isoformat(), ended_at=(start + timedelta(minutes=1)).isoformat()
    )
    return meta


def processed(ctx: Context, audio, meta) -> int:
    result = Ingestor(ctx).ingest_file(audio, meta)
    assert jobs.run_job(ctx, result.job, "test") == "processed"
    return result.id


def media_files(ctx: Context) -> set[str]:
    root = ctx.settings.media_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def keys_of(ctx: Context, conversation_id: int) -> set[str]:
    with ctx.db.session() as session:
        return set(recording_keys(session.get(Conversation, conversation_id).recording))


def settings(ctx: Context, **values) -> None:
    with ctx.db.session() as session:
        for key, value in values.items():
            policy.set_value(session, key.replace("_", "."), value)


@pytest.mark.model
def test_nothing_is_removed_while_retention_is_off(ctx: Context):
    processed(ctx, SHORT, meta_days_ago(400))
    before = media_files(ctx)
    removed = retention.purge_expired(ctx)
    assert removed.recordings == [] and removed.conversations == [] and media_files(ctx) == before


@pytest.mark.model
def test_old_recordings_are_purged_keeping_metadata_and_metrics(ctx: Context):
    with ctx.db.session() as session:
        categories.add(session, Actor.cli(), "Weather", {"phrases": ["weather"]})
    old = processed(ctx, SHORT, meta_days_ago(40))
    recent = processed(ctx, SHORT, meta_days_ago(10, external_id="RECENT"))
    held = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", meta_days_ago(41)).id
    with ctx.db.session() as session:
        retention.set_legal_hold(session, Actor.cli(), held, True)
    old_keys, held_keys = keys_of(ctx, old), keys_of(ctx, held)
    settings(ctx, retention_days=30)

    removed = retention.purge_expired(ctx)

    assert removed.recordings == [old] and removed.conversations == []
    files = media_files(ctx)
    # the same audio is still referenced by the recent call: its original stays, as do its own
    assert keys_of(ctx, recent) <= files and held_keys <= files
    with ctx.db.session() as session:
        conv = session.get(Conversation, old)
        assert conv.recording.purged_at is not None and conv.recording.playback_key is None
        assert session.scalar(select(func.count()).where(Segment.conversation_id == old)) == 0
        result = session.get(ConversationAnalysis, old)
        assert result.metrics["talk_to_listen"] and result.transcript == "[]"
        # nothing that quotes the transcript stays: the summary, the words categories matched
        assert result.summary is None
        [found] = session.scalars(select(CategoryMatch).where(CategoryMatch.conversation_id == old))
        assert found.matches and all(m["text"] is None for m in found.matches)
        recent_match = session.scalar(
            select(CategoryMatch).where(CategoryMatch.conversation_id == recent)
        )
        assert "weather" in recent_match.matches[0]["text"].lower()  # (the recent call keeps its)
        assert conv.contact.external_id == "CUST-77"
        entries = session.scalars(select(AuditEvent).where(AuditEvent.action == "recording.purge"))
        assert [(e.actor, e.object_id) for e in entries] == [("system:retention", str(old))]
    assert retention.purge_expired(ctx).recordings == []  # a second run has nothing to do
    # once no recording refers to the shared audio, it goes too
    settings(ctx, retention_days=5)
    assert retention.purge_expired(ctx).recordings == [recent]
    assert not (old_keys & media_files(ctx))


def test_a_transcript_imported_without_audio_is_purged_with_the_recordings(ctx: Context):
    """In `recordings` mode the transcript goes whether or not the call came with audio."""
    doc = {
        "language": "en",
        "transcript": {
            "segments": [
                {"speaker": "customer", "start_s": 0.5, "end_s": 2.0, "text": "my card number"}
            ]
        },
    }
    meta = Ingestor(ctx).check_metadata(meta_days_ago(40))
    old = Ingestor(ctx).import_transcript(json.dumps(doc).encode(), "json", meta).id
    settings(ctx, retention_days=30)
    assert retention.purge_expired(ctx).recordings == [old]
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).where(Segment.conversation_id == old)) == 0
        assert session.get(ConversationAnalysis, old).transcript == "[]"
        assert session.get(Conversation, old).recording is None  # (nothing made up)
        purges = select(func.count()).where(AuditEvent.action == "recording.purge")
        assert session.scalar(purges) == 1
    assert retention.purge_expired(ctx).recordings == []  # once: nothing left to purge
    with ctx.db.session() as session:
        assert session.scalar(purges) == 1


def test_whole_conversations_go_when_retention_says_so(ctx: Context):
    old = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", meta_days_ago(40)).id
    keys = keys_of(ctx, old)
    settings(ctx, retention_days=30, retention_mode="conversations")
    assert retention.purge_expired(ctx).conversations == [old]
    with ctx.db.session() as session:
        assert session.get(Conversation, old) is None
        assert session.scalar(select(func.count()).select_from(Recording)) == 0
    assert not (keys & media_files(ctx))


def test_the_worker_applies_retention(ctx: Context):
    old = Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", meta_days_ago(40)).id
    with ctx.db.session() as session:
        session.get(Conversation, old).processing_status = "processed"
        session.query(jobs.Job).delete()
    settings(ctx, retention_days=30)
    runner = worker.Worker(ctx, poll_s=0.1)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and keys_of(ctx, old):
            time.sleep(0.1)
    finally:
        runner.stop(timeout=5)
    assert keys_of(ctx, old) == set()


def everything_in_the_database(ctx: Context) -> str:
    with ctx.db.session() as session:
        return repr(
            [
                session.execute(text(f"SELECT * FROM {name}")).all()
                for name in inspect(ctx.db.engine).get_table_names()
                if name != "audit_events"
            ]
        )


@pytest.mark.model
def test_erasing_a_customer_removes_them_everywhere(ctx: Context):
    first = processed(ctx, SHORT, meta_days_ago(3, customer="CUST-GONE"))
    second = (
        Ingestor(ctx)
        .ingest_file(DEMO_CALLS / "synthetic_id_stereo.wav", meta_days_ago(2, customer="CUST-GONE"))
        .id
    )
    kept = processed(ctx, SHORT, meta_days_ago(1, customer="CUST-STAYS"))
    gone_keys = (keys_of(ctx, first) | keys_of(ctx, second)) - keys_of(ctx, kept)

    res = callscope(ctx, "erase-customer", "CUST-GONE", "--yes")

    assert res.returncode == 0, res.stderr
    assert "2 conversation(s)" in res.stdout
    dump = everything_in_the_database(ctx)
    assert "CUST-GONE" not in dump and "Name of CUST-GONE" not in dump
    assert "CUST-STAYS" in dump
    assert not (gone_keys & media_files(ctx)) and keys_of(ctx, kept) <= media_files(ctx)
    with ctx.db.session() as session:
        entry = session.scalar(select(AuditEvent).where(AuditEvent.action == "customer.erase"))
        assert entry.details == {"conversations": [first, second]}
        assert entry.actor.startswith("cli:") and "CUST-GONE" not in repr(
            (entry.object_id, entry.details)
        )
    res = callscope(ctx, "erase-customer", "CUST-GONE", "--yes")
    assert res.returncode == 1 and "no customer with external id 'CUST-GONE'" in res.stderr


def test_legal_hold_blocks_erasure(ctx: Context):
    conv = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(3, customer="CUST-HELD")).id
    with ctx.db.session() as session:
        retention.set_legal_hold(session, Actor.cli(), conv, True)
    before = media_files(ctx)
    with pytest.raises(ErasureError, match="on legal hold"):
        retention.erase_customer(ctx, Actor.cli(), "CUST-HELD")
    with ctx.db.session() as session:
        assert session.get(Conversation, conv) is not None
        assert session.scalar(select(Contact).where(Contact.external_id == "CUST-HELD"))
    assert media_files(ctx) == before


def test_admin_places_a_hold_and_erases_a_customer_from_the_pages(ctx: Context):
    conv = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(3, customer="CUST-PAGE")).id
    with ctx.db.session() as session:
        auth.add_user(session, "boss", "admin", PASSWORD)
        contact_id = session.get(Conversation, conv).contact_id
    with TestClient(create_app(ctx)) as client:
        csrf = sign_in(client, "boss")
        page = client.post(
            f"/admin/conversations/{conv}/legal-hold", data={"hold": "true", "csrf_token": csrf}
        ).text
        assert "Legal hold set." in page and "Release legal hold" in page
        erase = f"/admin/contacts/{contact_id}/erase"
        page = client.post(erase, data={"confirm": "CUST-PAGE", "csrf_token": csrf}).text
        assert "on legal hold" in page
        client.post(
            f"/admin/conversations/{conv}/legal-hold", data={"hold": "false", "csrf_token": csrf}
        )
        page = client.post(erase, data={"confirm": "wrong", "csrf_token": csrf}).text
        assert "to confirm the erasure" in page
        page = client.post(erase, data={"confirm": "CUST-PAGE", "csrf_token": csrf}).text
        assert "Customer erased." in page
        assert client.get(f"/conversations/{conv}").status_code == 404
        assert re.search(r"0 conversations", client.get("/conversations").text)


def test_retention_and_legal_hold_from_the_command_line(ctx: Context):
    meta = meta_days_ago(40)
    Ingestor(ctx).ingest_file(DEMO_CALLS / "synthetic_en_stereo.wav", meta)
    assert callscope(ctx, "settings", "set", "retention.days", "30").returncode == 0
    res = callscope(ctx, "settings", "set", "retention.days", "--", "-3")
    assert res.returncode == 1 and "must be at least 0" in res.stderr
    held = callscope(ctx, "legal-hold", meta["external_id"])
    assert held.returncode == 0 and "legal hold set" in held.stdout
    assert callscope(ctx, "purge").stdout.startswith("removed 0 recording(s)")
    assert callscope(ctx, "legal-hold", meta["external_id"], "--release").returncode == 0
    assert callscope(ctx, "purge").stdout.startswith("removed 1 recording(s)")
    audit_lines = callscope(ctx, "audit").stdout.splitlines()
    assert [line.split()[2] for line in audit_lines] == [
        "recording.purge",
        "conversation.legal_hold",
        "conversation.legal_hold",
        "setting.change",
    ]


# --- what erasure leaves behind ---------------------------------------------------------------

SECRET_WORD = "zanzibarquokka"


@pytest.fixture
def sqlite_ctx(tmp_path, model_dir) -> Iterator[Context]:
    """A context on SQLite whichever database the run uses: the file is what is inspected."""
    context = Context.open(Settings(data_dir=tmp_path / "data", model_dir=model_dir))
    yield context
    context.close()


@pytest.mark.parametrize("how", ["erasure", "retention"])
def test_erased_words_are_gone_from_the_database_file(sqlite_ctx: Context, how: str):
    ctx = sqlite_ctx
    kept = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(1, "CUST-KEPT")).id
    gone = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(40, "CUST-GONE")).id
    plant_transcript(ctx, kept, "an ordinary sentence about the weather")
    plant_transcript(ctx, gone, f"my secret word is {SECRET_WORD} please forget it")
    database = ctx.settings.data_dir / "callscope.db"

    def checkpointed() -> bytes:
        with ctx.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return database.read_bytes()

    assert SECRET_WORD.encode() in checkpointed()  # the baseline: it was there
    if how == "erasure":
        retention.erase_customer(ctx, Actor.cli(), "CUST-GONE")
    else:
        settings(ctx, retention_days=30, retention_mode="conversations")
        assert retention.purge_expired(ctx).conversations == [gone]
    assert SECRET_WORD.encode() not in checkpointed()
    with ctx.db.session() as session:  # the rest still searchable
        assert session.execute(
            text("SELECT rowid FROM conversation_search WHERE conversation_search MATCH 'weather'")
        ).scalars().all() == [kept]


def test_the_id_of_an_erased_conversation_is_never_given_out_again(ctx: Context):
    first = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(1, "CUST-A")).id
    last = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(1, "CUST-B")).id
    retention.erase_customer(ctx, Actor.cli(), "CUST-B")
    following = Ingestor(ctx).ingest_file(SHORT, meta_days_ago(1, "CUST-C")).id
    assert first < last < following
