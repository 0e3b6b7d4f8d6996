"""search: the transcript index, a stored duration to filter and sort on, 64-bit file sizes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.create_index("ix_conversations_duration", ["duration_s"])
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("size_bytes", type_=sa.BigInteger(), existing_type=sa.Integer())
    if postgres:
        op.execute(
            "UPDATE conversations SET duration_s = extract(epoch from ended_at - started_at)"
        )
        op.execute(
            """
            CREATE TABLE conversation_search (
                conversation_id integer PRIMARY KEY
                    REFERENCES conversations (id) ON DELETE CASCADE,
                body text NOT NULL,
                document tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
            )
            """
        )
        op.execute(
            "CREATE INDEX ix_conversation_search ON conversation_search USING gin (document)"
        )
        op.execute(
            "INSERT INTO conversation_search (conversation_id, body)"
            " SELECT conversation_id, string_agg(text, ' ' ORDER BY position)"
            " FROM segments GROUP BY conversation_id"
        )
    else:
        op.execute(
            "UPDATE conversations"
            " SET duration_s = (julianday(ended_at) - julianday(started_at)) * 86400"
        )
        op.execute(
            "CREATE VIRTUAL TABLE conversation_search USING fts5"
            "(body, tokenize = 'unicode61 remove_diacritics 2')"
        )
        op.execute(
            "INSERT INTO conversation_search (rowid, body)"
            " SELECT conversation_id, group_concat(text, ' ') FROM"
            " (SELECT conversation_id, text FROM segments ORDER BY conversation_id, position)"
            " GROUP BY conversation_id"
        )


def downgrade() -> None:
    op.execute("DROP TABLE conversation_search")
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("size_bytes", type_=sa.Integer(), existing_type=sa.BigInteger())
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_duration")
        batch.drop_column("duration_s")
