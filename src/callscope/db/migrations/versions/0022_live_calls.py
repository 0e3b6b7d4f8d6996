"""live calls and their lines; a recording's own warnings ("incomplete")

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    op.create_table(
        "live_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("protocol", sa.String(20), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("api_tokens.id", ondelete="SET NULL")),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="SET NULL")),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channel_map", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(10)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_s", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("incomplete", sa.Boolean(), nullable=False),
        sa.Column("customer_sentiment", sa.Float()),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        ),
        sa.Column("error", sa.Text()),
        sa.UniqueConstraint("protocol", "stream_id"),
    )
    op.create_index("ix_live_calls_token_id", "live_calls", ["token_id"])
    op.create_index("ix_live_calls_queue_id", "live_calls", ["queue_id"])
    op.create_index("ix_live_calls_status", "live_calls", ["status"])
    op.create_table(
        "live_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "live_call_id",
            sa.Integer(),
            sa.ForeignKey("live_calls.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("utterance", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(20), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("sentiment", sa.Float()),
        sa.Column("alert", sa.String(200)),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.UniqueConstraint("live_call_id", "channel", "utterance"),
    )
    op.create_index("ix_live_lines_live_call_id", "live_lines", ["live_call_id"])
    op.create_index("ix_live_lines_revision", "live_lines", ["revision"])


def downgrade() -> None:
    op.drop_table("live_lines")
    op.drop_table("live_calls")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("warnings")
