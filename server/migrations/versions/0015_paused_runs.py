"""Paused runs are unfinished: the partial index of unfinished runs (the queue's depth on /metrics,
the live part of the stats) covers `paused` too.

Revision ID: 0015_paused_runs
Revises: 0014_device_commands
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_paused_runs"
down_revision = "0014_device_commands"
branch_labels = None
depends_on = None

BEFORE = "status IN ('queued', 'running', 'waiting_for_approval')"
AFTER = "status IN ('queued', 'running', 'waiting_for_approval', 'paused')"


def _active_index(condition: str) -> None:
    op.drop_index("ix_runs_active_status_created", table_name="runs")
    where = sa.text(condition)
    op.create_index(
        "ix_runs_active_status_created",
        "runs",
        ["status", "created_at"],
        sqlite_where=where,
        postgresql_where=where,
    )


def upgrade() -> None:
    _active_index(AFTER)


def downgrade() -> None:
    _active_index(BEFORE)
