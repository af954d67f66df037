"""Device commands: what a person asks a device's bridge to do now (inspect its screen, click), and
when each bridge last asked for commands.

Revision ID: 0014_device_commands
Revises: 0013_run_retries
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_device_commands"
down_revision = "0013_run_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("commands_polled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(4000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_device_commands_account_id_accounts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_commands_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_commands"),
    )
    op.create_index(
        "ix_device_commands_device_id_status_created_at",
        "device_commands",
        ["device_id", "status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_device_commands_device_id_status_created_at", table_name="device_commands")
    op.drop_table("device_commands")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("commands_polled_at")
