"""the mean confidence of a conversation's transcript

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    # (calls processed before keep no figure until they are processed again)


def downgrade() -> None:
    with op.batch_alter_table("conversation_analysis") as batch:
        batch.drop_column("confidence")
