"""Fleet dispatch: device tags, a run's batch and the tag of a run any free phone with it may take.

Revision ID: 0017_fleet_dispatch
Revises: 0016_app_models
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_fleet_dispatch"
down_revision = "0016_app_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("device_tag", sa.String(64), nullable=True))
        batch.create_index("ix_runs_batch", ["batch_id", "created_at"])
        batch.create_index(
            "ix_runs_account_tag_status_created", ["account_id", "device_tag", "status", "created_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_account_tag_status_created")
        batch.drop_index("ix_runs_batch")
        batch.drop_column("device_tag")
        batch.drop_column("batch_id")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("tags")
