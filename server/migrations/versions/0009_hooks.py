"""Incoming hooks (a secret URL per workflow that queues runs), their calls (for the rate limit), and who
asked for a run (`runs.triggered_by`).

Revision ID: 0009_hooks
Revises: 0008_webhooks
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_hooks"
down_revision = "0008_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: SQLite's batch mode would copy the table and lose its
    # expression indexes, which it cannot reflect.
    op.add_column("runs", sa.Column("triggered_by", sa.String(320), nullable=True))
    op.create_table(
        "workflow_hooks",
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
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_prefix", sa.String(20), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_workflow_hooks_token_hash"),
    )
    live = sa.text("revoked_at IS NULL")
    op.create_index(
        "uq_workflow_hooks_live_name",
        "workflow_hooks",
        ["workflow_id", "name"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_index("ix_workflow_hooks_account_id_created_at", "workflow_hooks", ["account_id", "created_at"])
    op.create_table(
        "workflow_hook_hits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "hook_id", sa.String(36), sa.ForeignKey("workflow_hooks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_workflow_hook_hits_hook_id_at", "workflow_hook_hits", ["hook_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_workflow_hook_hits_hook_id_at", table_name="workflow_hook_hits")
    op.drop_table("workflow_hook_hits")
    op.drop_index("ix_workflow_hooks_account_id_created_at", table_name="workflow_hooks")
    op.drop_index("uq_workflow_hooks_live_name", table_name="workflow_hooks")
    op.drop_table("workflow_hooks")
    op.drop_column("runs", "triggered_by")
