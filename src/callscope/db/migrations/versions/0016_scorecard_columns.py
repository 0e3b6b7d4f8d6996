"""the figures scorecards add up, as columns (customer sentiment and trend, non-talk time), and
the weekly cells scorecards add up (made when read, made again when one of their calls changes)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("customer_sentiment", "customer_trend", "non_talk_s")


def upgrade() -> None:
    with op.batch_alter_table("conversation_analysis") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
    analysis = sa.table(
        "conversation_analysis",
        sa.column("conversation_id", sa.Integer()),
        sa.column("sentiment", sa.JSON()),
        sa.column("metrics", sa.JSON()),
        *(sa.column(name, sa.Float()) for name in COLUMNS),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(analysis.c.conversation_id, analysis.c.sentiment, analysis.c.metrics)
    ).all()
    for conversation_id, sentiment, metrics in rows:
        customer = (sentiment or {}).get("customer") or {}
        bind.execute(
            analysis.update()
            .where(analysis.c.conversation_id == conversation_id)
            .values(
                customer_sentiment=customer.get("score"),
                customer_trend=(sentiment or {}).get("trend"),
                non_talk_s=((metrics or {}).get("non_talk") or {}).get("total_s"),
            )
        )

    key = {"primary_key": True, "autoincrement": False}
    op.create_table(
        "scorecard_weeks",
        sa.Column("week", sa.Integer(), **key),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("made", sa.Integer(), nullable=False),
    )
    cell = [sa.Column(n, sa.Integer(), **key) for n in ("week", "agent_id", "queue_id")]
    op.create_table(
        "scorecard_cells",
        *cell,
        sa.Column("calls", sa.Integer(), nullable=False),
        *(
            sa.Column(
                f"{figure}_{part}", sa.Float() if part == "sum" else sa.Integer(), nullable=False
            )
            for figure in ("handle", "talk", "non_talk", "sentiment", "trend")
            for part in ("sum", "n")
        ),
        sa.Column("evaluations", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
    )
    op.create_table(
        "scorecard_category_cells",
        *(sa.Column(n, sa.Integer(), **key) for n in ("week", "agent_id", "queue_id")),
        sa.Column("category_id", sa.Integer(), **key),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("scorecard_category_cells", "scorecard_cells", "scorecard_weeks"):
        op.drop_table(table)
    with op.batch_alter_table("conversation_analysis") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
