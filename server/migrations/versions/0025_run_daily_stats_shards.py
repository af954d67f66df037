"""The analytics rollup in shards: a day's count of a workflow (or device) and status is the sum of up to
`rollup.SHARDS` rows, so concurrent transactions ending runs of one workflow do not all wait for the
row lock of one row until each commits (server/runs/rollup.py).

Revision ID: 0025_run_daily_stats_shards
Revises: 0024_account_artifact_quota
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0025_run_daily_stats_shards"
down_revision = "0024_account_artifact_quota"
branch_labels = None
depends_on = None

_KEY = "account_id, dimension, day, key, status"
_COUNTS = "runs, timed, duration_sum"


def _rebuild(sharded: bool) -> None:
    """Make the table again with or without `shard` in its key, keeping the counts (folded when
    the shards go)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if sharded:
            op.execute("ALTER TABLE run_daily_stats ADD COLUMN shard smallint NOT NULL DEFAULT 0")
            op.execute("ALTER TABLE run_daily_stats DROP CONSTRAINT pk_run_daily_stats")
            op.execute(
                f"ALTER TABLE run_daily_stats ADD CONSTRAINT pk_run_daily_stats PRIMARY KEY ({_KEY}, shard)"
            )
            return
    shard_column = "shard SMALLINT NOT NULL DEFAULT 0, " if sharded else ""
    key = f"{_KEY}, shard" if sharded else _KEY
    op.execute(
        "CREATE TABLE run_daily_stats_new (account_id VARCHAR(36) NOT NULL, dimension VARCHAR(16) NOT NULL, "
        "day VARCHAR(10) NOT NULL, key VARCHAR(36) NOT NULL, status VARCHAR(32) NOT NULL, "
        f"runs INTEGER NOT NULL, timed INTEGER NOT NULL, duration_sum BIGINT NOT NULL, {shard_column}"
        f"CONSTRAINT pk_run_daily_stats PRIMARY KEY ({key}))"
        if bind.dialect.name == "sqlite"
        else "CREATE TABLE run_daily_stats_new (LIKE run_daily_stats INCLUDING DEFAULTS)"
    )
    op.execute(
        f"INSERT INTO run_daily_stats_new ({_KEY}, {_COUNTS}) SELECT {_KEY}, SUM(runs), SUM(timed), "
        f"SUM(duration_sum) FROM run_daily_stats GROUP BY {_KEY}"
    )
    op.execute("DROP TABLE run_daily_stats")
    op.execute("ALTER TABLE run_daily_stats_new RENAME TO run_daily_stats")
    if bind.dialect.name == "postgresql":  # only the way back: the shards folded, the column dropped
        op.execute("ALTER TABLE run_daily_stats DROP COLUMN shard")
        op.execute(f"ALTER TABLE run_daily_stats ADD CONSTRAINT pk_run_daily_stats PRIMARY KEY ({_KEY})")


def upgrade() -> None:
    _rebuild(sharded=True)


def downgrade() -> None:
    _rebuild(sharded=False)
