"""Retries: a run names the run it runs again (`retry_of`), its attempt and when it may be claimed
(`not_before`); a workflow's automatic retry of failed runs (`auto_retry_max`, `auto_retry_backoff_s`).

Revision ID: 0013_run_retries
Revises: 0012_analytics
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_run_retries"
down_revision = "0012_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("retry_of", sa.String(36), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_runs_retry_of", ["retry_of"])
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("auto_retry_max", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("auto_retry_backoff_s", sa.Integer(), nullable=False, server_default="30"))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("auto_retry_backoff_s")
        batch.drop_column("auto_retry_max")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_retry_of")
        batch.drop_column("not_before")
        batch.drop_column("attempt")
        batch.drop_column("retry_of")
