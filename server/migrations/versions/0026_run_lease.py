"""Run leases: until when a bridge may start a run's steps without asking the step gate
(`runs.lease_until`, null: it asks before every step).

Revision ID: 0026_run_lease
Revises: 0025_run_daily_stats_shards
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_run_lease"
down_revision = "0025_run_daily_stats_shards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_until")
