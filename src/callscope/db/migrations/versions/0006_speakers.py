"""agent voiceprints, how a mono call's speakers were told apart, and redaction of personal data

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_voiceprints",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.JSON(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.add_column(sa.Column("speakers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("redactions", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("original_transcript", sa.Text(), nullable=True))
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("original_playback_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("original_playback_key")
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.drop_column("original_transcript")
        batch.drop_column("redactions")
        batch.drop_column("speakers")
    op.drop_table("agent_voiceprints")
