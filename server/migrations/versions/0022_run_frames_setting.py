"""Screens per step per run: the `frames` a run was triggered with (`every`, `failures`, `off`; null:
its workflow's setting), sent to the bridge with the claimed run.

Revision ID: 0022_run_frames_setting
Revises: 0021_phone_health
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_run_frames_setting"
down_revision = "0021_phone_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("frames", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("frames")
