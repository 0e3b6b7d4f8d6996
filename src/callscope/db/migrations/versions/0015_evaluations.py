"""quality evaluation forms, evaluations and the calls sampled for them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluation_forms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_evaluation_forms_name", "evaluation_forms", ["name"])
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("form_id", sa.Integer(), sa.ForeignKey("evaluation_forms.id"), nullable=False),
        sa.Column("evaluator_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("evaluator", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("automatic", sa.JSON(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("comments", sa.JSON(), nullable=False),
        sa.Column("score_pct", sa.Float()),
        sa.Column("response", sa.Text()),
        sa.Column("answer", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_evaluations_conversation_id", "evaluations", ["conversation_id"])
    op.create_index("ix_evaluations_created_at", "evaluations", ["created_at"])
    op.create_table(
        "evaluation_assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "supervisor_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_evaluation_assignments_conversation_id", "evaluation_assignments", ["conversation_id"]
    )
    op.create_index(
        "ix_evaluation_assignments_supervisor_id", "evaluation_assignments", ["supervisor_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_evaluation_assignments_supervisor_id", "evaluation_assignments")
    op.drop_index("ix_evaluation_assignments_conversation_id", "evaluation_assignments")
    op.drop_table("evaluation_assignments")
    op.drop_index("ix_evaluations_created_at", "evaluations")
    op.drop_index("ix_evaluations_conversation_id", "evaluations")
    op.drop_table("evaluations")
    op.drop_index("ix_evaluation_forms_name", "evaluation_forms")
    op.drop_table("evaluation_forms")
