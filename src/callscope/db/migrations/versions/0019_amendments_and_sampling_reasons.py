"""an evaluation amended by its evaluator (when, and why); why a call was sampled; what decided
a line's sentiment

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("evaluations", sa.Column("amended_at", sa.DateTime(timezone=True)))
    op.add_column("evaluations", sa.Column("amended_why", sa.Text()))
    op.add_column("evaluation_assignments", sa.Column("reasons", sa.JSON()))
    op.add_column("segments", sa.Column("sentiment_because", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("sentiment_because")
    with op.batch_alter_table("evaluation_assignments") as batch:
        batch.drop_column("reasons")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("amended_why")
        batch.drop_column("amended_at")
