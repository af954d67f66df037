"""What each phone said of itself in its bridge's last heartbeat (`devices.phone_health`): its adb
state, battery, charging, screen, the app in front and the run in hand.

Revision ID: 0021_phone_health
Revises: 0020_run_logs
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_phone_health"
down_revision = "0020_run_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("phone_health", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("phone_health")
