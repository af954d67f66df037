"""Analytics: the daily rollup of ended runs and the failed steps of ended runs, filled from the runs
already stored.

Revision ID: 0012_analytics
Revises: 0011_approval_emails
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_analytics"
down_revision = "0011_approval_emails"
branch_labels = None
depends_on = None

ENDED = "('success', 'failed', 'cancelled', 'timeout')"


def upgrade() -> None:
    op.create_table(
        "run_daily_stats",
        sa.Column("account_id", sa.String(36), primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("timed", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "run_step_failures",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("node_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("message", sa.String(300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_step_failures_account_at", "run_step_failures", ["account_id", "at"])
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(timezone('UTC', created_at), 'YYYY-MM-DD')"
        node, kind = "t.event->>'nodeId'", "t.event->>'kind'"
        message, outcome = "left(coalesce(t.event->>'message', ''), 300)", "t.event->>'outcome'"
        at = "(t.event->>'startedAt')::timestamptz"
    else:
        day = "substr(created_at, 1, 10)"  # SQLite keeps UTC text: 'YYYY-MM-DD HH:MM:SS.ffffff'
        node, kind = "json_extract(t.event, '$.nodeId')", "json_extract(t.event, '$.kind')"
        message = "substr(coalesce(json_extract(t.event, '$.message'), ''), 1, 300)"
        outcome = "json_extract(t.event, '$.outcome')"
        started = "json_extract(t.event, '$.startedAt')"  # '2026-11-23T10:00:01.250Z', always
        at = f"substr({started}, 1, 10) || ' ' || substr({started}, 12, 12) || '000'"
    for dimension, key in (("workflow", "workflow_id"), ("device", "coalesce(device_id, '')")):
        op.execute(
            "INSERT INTO run_daily_stats "
            "(account_id, dimension, day, key, status, runs, timed, duration_sum) "
            f"SELECT account_id, '{dimension}', {day}, {key}, status, count(*), "
            f"count(duration_ms), coalesce(sum(duration_ms), 0) FROM runs WHERE status IN {ENDED} "
            f"GROUP BY account_id, {day}, {key}, status"
        )
    op.execute(
        "INSERT INTO run_step_failures (run_id, seq, account_id, workflow_id, node_id, kind, message, at) "
        f"SELECT t.run_id, t.seq, r.account_id, r.workflow_id, {node}, {kind}, {message}, {at} "
        f"FROM trace_events t JOIN runs r ON r.id = t.run_id "
        f"WHERE r.status IN {ENDED} AND {outcome} = 'failed'"
    )


def downgrade() -> None:
    op.drop_index("ix_run_step_failures_account_at", table_name="run_step_failures")
    op.drop_table("run_step_failures")
    op.drop_table("run_daily_stats")
