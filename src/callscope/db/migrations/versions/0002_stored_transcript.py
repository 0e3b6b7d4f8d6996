"""stored transcript document

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Conversations processed before this revision keep NULL: their transcript is read from
    # the segment and word rows until they are processed again.
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.add_column(sa.Column("transcript", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.drop_column("transcript")
