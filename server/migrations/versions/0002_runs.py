"""Runs: runs, trace events, the run.updated event log, artifacts.

Revision ID: 0002_runs
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0002_runs"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "workflow_version_id",
            sa.String(36),
            sa.ForeignKey("workflow_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "device_id", sa.String(36), sa.ForeignKey("devices.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("n_steps", sa.Integer(), nullable=True),
        sa.Column("n_failed", sa.Integer(), nullable=True),
        sa.Column("n_retries", sa.Integer(), nullable=True),
        sa.Column("trace_len", sa.Integer(), nullable=False),
        _ts("claimed_at", nullable=True),
        _ts("cancel_requested_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_runs_account_created", "runs", ["account_id", "created_at", "id"])
    op.create_index("ix_runs_account_status_created", "runs", ["account_id", "status", "created_at", "id"])
    op.create_index(
        "ix_runs_account_workflow_created", "runs", ["account_id", "workflow_id", "created_at", "id"]
    )
    op.create_index("ix_runs_account_device_created", "runs", ["account_id", "device_id", "created_at", "id"])
    op.create_index("ix_runs_device_status_created", "runs", ["device_id", "status", "created_at"])
    op.create_table(
        "trace_events",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("event", sa.JSON(), nullable=False),
    )
    op.create_table(
        "run_events",
        sa.Column("id", _EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _ts("created_at"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_run_events_account_id_id", "run_events", ["account_id", "id"])
    op.create_index("ix_run_events_created_at", "run_events", ["created_at"])
    op.create_table(
        "artifacts",
        sa.Column("id", _EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("run_id", "name", name="uq_artifacts_run_id_name"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in ("artifacts", "run_events", "trace_events", "runs"):
        op.drop_table(table)
