"""ids of erased customers, conversations and removed webhooks are never given out again

On SQLite a table without AUTOINCREMENT reuses the id of its last row once it is deleted: a new
conversation then inherited an erased one's id and audit entries. PostgreSQL's sequences never
reuse ids. (The tables are rebuilt with foreign keys off; see callscope.db.upgrade.)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("contacts", "conversations", "webhooks", "webhook_deliveries")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always"):
            pass
