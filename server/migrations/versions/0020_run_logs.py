"""Execution logs: the engine's decisions of a run as its final `runs.report` carried them.

Revision ID: 0020_run_logs
Revises: 0019_artifact_store
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_run_logs"
down_revision = "0019_artifact_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_logs",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_logs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_logs")),
    )


def downgrade() -> None:
    op.drop_table("run_logs")
