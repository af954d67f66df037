"""Screens per step: an artifact's metadata (a frame's step, the element it acted on) and the
event name of a `run_events` row (null: `run.updated`; `run.frame` when a step's screen arrived,
`run.step` for the step in flight), and until when someone watches a run live (`runs.live_until`).

Revision ID: 0018_run_frames
Revises: 0017_fleet_dispatch
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_run_frames"
down_revision = "0017_fleet_dispatch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("meta", sa.JSON(), nullable=True))
    with op.batch_alter_table("run_events") as batch:
        batch.add_column(sa.Column("event", sa.String(32), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("live_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("live_until")
    with op.batch_alter_table("run_events") as batch:
        batch.drop_column("event")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("meta")
