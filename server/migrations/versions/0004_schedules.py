"""Schedules: runs dispatched on a cron schedule.

Revision ID: 0004_schedules
Revises: 0003_dashboard
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_schedules"
down_revision = "0003_dashboard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "device_id", sa.String(36), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_schedules_enabled_next_fire_at", "schedules", ["enabled", "next_fire_at"])
    op.create_index(
        "ix_schedules_account_workflow_created", "schedules", ["account_id", "workflow_id", "created_at"]
    )
    op.create_index(op.f("ix_schedules_workflow_id"), "schedules", ["workflow_id"])
    op.create_index(op.f("ix_schedules_device_id"), "schedules", ["device_id"])


def downgrade() -> None:
    op.drop_table("schedules")
