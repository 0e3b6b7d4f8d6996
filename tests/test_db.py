"""The store: migrations match the models, SQLite runs in WAL mode, upgrade is repeatable."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from callscope.context import Context
from callscope.db import Database, alembic_config
from callscope.db.models import Base, Job


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
