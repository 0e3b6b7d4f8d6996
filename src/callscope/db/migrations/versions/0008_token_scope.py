"""what an API token may do: read, or also ingest (administrators' tokens)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("scope", sa.String(length=20), nullable=False, server_default="read")
        )
    # tokens that ingested before keep doing so if, and only if, an administrator owns them
    op.execute(
        "UPDATE api_tokens SET scope = 'ingest' "
        "WHERE user_id IN (SELECT id FROM users WHERE role = 'admin')"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
