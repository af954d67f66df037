"""Runs know whether a frame of theirs is stored (`runs.has_frames`), so that the end of a run
without frames asks for no video and costs no look for frames (server/runs/video.py).

Runs stored before are flagged from their artifacts: a frame is an artifact named `frame-SEQ.jpg`
(or `.webp`, SEQ five digits) with its meta (a JSON object), as server/runs/frames.py stores it.

Revision ID: 0028_run_has_frames
Revises: 0027_trace_events_without_fk
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_run_has_frames"
down_revision = "0027_trace_events_without_fk"
branch_labels = None
depends_on = None

# server/runs/frames.py FRAME_NAME, and a meta that is an object (an artifact without meta holds
# SQL NULL or JSON null), in each database's terms.
_PG_FRAMES = (
    "SELECT run_id FROM artifacts WHERE name ~ '^frame-[0-9]{5}\\.(jpg|webp)$' "
    "AND json_typeof(meta) = 'object'"
)
_DIGITS = "[0-9]" * 5
_SQLITE_FRAMES = (
    f"SELECT run_id FROM artifacts WHERE (name GLOB 'frame-{_DIGITS}.jpg' "
    f"OR name GLOB 'frame-{_DIGITS}.webp') AND json_type(meta) = 'object'"
)


def upgrade() -> None:
    # In place on both databases (a batch on SQLite would copy the table, and lose its expression indexes).
    op.add_column("runs", sa.Column("has_frames", sa.Boolean(), nullable=False, server_default=sa.false()))
    postgresql = op.get_bind().dialect.name == "postgresql"
    frames = _PG_FRAMES if postgresql else _SQLITE_FRAMES
    op.execute(f"UPDATE runs SET has_frames = {'true' if postgresql else '1'} WHERE id IN ({frames})")


def downgrade() -> None:
    op.drop_column("runs", "has_frames")  # SQLite drops a column in place since 3.35
