"""Core tables: accounts and tokens, devices and pairing, workflows and versions, denylist entries.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(36), primary_key=True)


def _account_fk() -> sa.Column[str]:
    return sa.Column(
        "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        _id(),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("run_retention_days", sa.Integer(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "api_tokens",
        _id(),
        _account_fk(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("display_prefix", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
    )
    op.create_index(op.f("ix_api_tokens_account_id_created_at"), "api_tokens", ["account_id", "created_at"])
    op.create_table(
        "devices",
        _id(),
        _account_fk(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("serial", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("android_version", sa.String(50), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
        _ts("last_seen_at", nullable=True),
        _ts("revoked_at", nullable=True),
    )
    op.create_index(op.f("ix_devices_account_id_created_at"), "devices", ["account_id", "created_at"])
    op.create_table(
        "pairing_codes",
        _id(),
        _account_fk(),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.Column(
            "device_id", sa.String(36), sa.ForeignKey("devices.id", ondelete="SET NULL"), nullable=True
        ),
    )
    op.create_index(op.f("ix_pairing_codes_account_id"), "pairing_codes", ["account_id"])
    op.create_table(
        "pairing_failures",
        _id(),
        sa.Column("key", sa.String(200), nullable=False),
        _ts("created_at"),
    )
    op.create_index(op.f("ix_pairing_failures_key_created_at"), "pairing_failures", ["key", "created_at"])
    op.create_table(
        "workflows",
        _id(),
        _account_fk(),
        sa.Column("name", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("published_version_id", sa.String(36), nullable=True),
        sa.Column("latest_version_number", sa.Integer(), nullable=False),
    )
    op.create_index(op.f("ix_workflows_account_id_created_at"), "workflows", ["account_id", "created_at"])
    op.create_table(
        "workflow_versions",
        _id(),
        sa.Column(
            "workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False
        ),
        _account_fk(),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("workflow_id", "number"),
    )
    op.create_index(op.f("ix_workflow_versions_account_id"), "workflow_versions", ["account_id"])
    op.create_table(
        "denylist_entries",
        _id(),
        _account_fk(),
        sa.Column("pattern", sa.String(255), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("account_id", "pattern"),
    )


def downgrade() -> None:
    for table in (
        "denylist_entries",
        "workflow_versions",
        "workflows",
        "pairing_failures",
        "pairing_codes",
        "devices",
        "api_tokens",
        "accounts",
    ):
        op.drop_table(table)
