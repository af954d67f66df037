"""Devices: the health their bridge reports with each heartbeat (worker state, restarts, last error).

Revision ID: 0006_device_bridge_health
Revises: 0005_approvals
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_device_bridge_health"
down_revision = "0005_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("bridge_health", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("bridge_health")
