"""each line's meaning as a vector, and the log of calls whose lines changed or went

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("meaning", sa.LargeBinary()))
    op.create_table(
        "line_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("before_line", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("line_changes")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("meaning")
