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
    fill = (
        analysis.update()
        .where(analysis.c.conversation_id == sa.bindparam("id"))
        .values(
            customer_sentiment=sa.bindparam("sentiment_"),
            customer_trend=sa.bindparam("trend_"),
            non_talk_s=sa.bindparam("non_talk_"),
        )
    )
    after = 0
    while True:  # a thousand results at a time, in order of their call
        rows = bind.execute(
            sa.select(analysis.c.conversation_id, analysis.c.sentiment, analysis.c.metrics)
            .where(analysis.c.conversation_id > after)
            .order_by(analysis.c.conversation_id)
            .limit(1000)
        ).all()
        if not rows:
            break
        values = []
        for conversation_id, sentiment, metrics in rows:
            felt = sentiment or {}
            values.append(
                {
                    "id": conversation_id,
                    "sentiment_": (felt.get("customer") or {}).get("score"),
                    "trend_": felt.get("trend"),
                    "non_talk_": ((metrics or {}).get("non_talk") or {}).get("total_s"),
                }
            )
        bind.execute(fill, values)
        after = rows[-1][0]
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
