"""Approvals: people's answers to the approval nodes of runs on phones.

Revision ID: 0005_approvals
Revises: 0004_schedules
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_approvals"
down_revision = "0004_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("node_id", sa.String(200), nullable=False),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("run_id", "node_id", "visit", name="uq_approvals_run_id_node_id_visit"),
    )
    op.create_index(
        "ix_approvals_account_status_requested", "approvals", ["account_id", "status", "requested_at"]
    )
    op.create_index("ix_approvals_account_requested", "approvals", ["account_id", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_approvals_account_requested", table_name="approvals")
    op.drop_index("ix_approvals_account_status_requested", table_name="approvals")
    op.drop_table("approvals")
