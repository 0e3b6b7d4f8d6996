"""The store: migrations match the models, SQLite runs in WAL mode, upgrade is repeatable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from callscope.context import Context
from callscope.db import Database, alembic_config
from callscope.db.models import (
    Agent,
    Base,
    Contact,
    Conversation,
    ConversationSession,
    Job,
)


def test_migrations_create_every_table_of_the_models(ctx: Context):
    tables = set(inspect(ctx.db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_and_models_do_not_drift(ctx: Context):
    with ctx.db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                # the search index is dialect-specific DDL (an FTS5 table, a tsvector), kept
                # out of the models on purpose
                "include_name": lambda name, _kind, parent: (
                    not ((parent.get("table_name") or name or "").startswith("conversation_search"))
                )
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_foreign_keys_are_enforced_and_sqlite_uses_wal(ctx: Context):
    with pytest.raises(IntegrityError), ctx.db.session() as session:
        session.add(Job(conversation_id=999))
    if ctx.db.engine.dialect.name == "sqlite":
        with ctx.db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    else:
        assert ctx.db.engine.dialect.name == "postgresql"


def test_upgrade_twice_is_harmless(ctx: Context):
    again = Database(ctx.db.url)
    again.upgrade()
    with again.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(alembic_config(ctx.db.url)).get_current_head()
    again.dispose()


def test_rebuilding_tables_keeps_every_row_and_reference(tmp_path):
    """An older SQLite database with calls in it upgrades without losing a row: the tables
    rebuilt for never-reused ids keep their rows, and rows referring to them stay (with
    foreign keys on during the rebuild, dropping the old table would cascade to them)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    with db.session() as session:  # (these tables are the same at 0008 and now)
        agent, contact = Agent(external_id="AG-1", name="Ana"), Contact(external_id="C-1")
        started = datetime(2026, 11, 20, 14, tzinfo=UTC)
        session.add(
            Conversation(
                external_id="CONV-1",
                contact=contact,
                primary_agent=agent,
                metadata_json={},
                sessions=[ConversationSession(position=0, agent=agent, started_at=started)],
            )
        )
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM conversation_sessions")).scalar() == 1
        assert conn.execute(text("SELECT contact_id FROM conversations")).scalar() == 1
        ddl = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'conversations'")
        ).scalar()
        assert "AUTOINCREMENT" in ddl
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_scorecard_figures_of_stored_results_are_filled_in_on_upgrade(tmp_path):
    """Results stored before 0016 get their customer sentiment, trend and non-talk columns
    from their JSON, so scorecards count them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
        conn.execute(
            text(
                "INSERT INTO conversations (id, external_id, channel, status, consent_status,"
                " processing_status, legal_hold, metadata_json, created_at, modified_on)"
                " VALUES (1, 'C-1', 'voice', 'closed', 'granted', 'processed', 0, '{}',"
                " '2026-11-20 10:00:00', '2026-11-20 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO conversation_analysis (conversation_id, sentiment, metrics,"
                " computed_at) VALUES (1, :sentiment, :metrics, '2026-11-20 10:00:00')"
            ),
            {
                "sentiment": '{"customer": {"score": -0.4, "label": "negative"}, "trend": 0.3}',
                "metrics": '{"non_talk": {"total_s": 12.5}}',
            },
        )
    db.upgrade()
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT customer_sentiment, customer_trend, non_talk_s FROM conversation_analysis")
        ).one()
    assert tuple(row) == (-0.4, 0.3, 12.5)
    db.dispose()
