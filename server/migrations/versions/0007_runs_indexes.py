"""Runs indexes: the list's orders by start and by duration, its trigger filter, its search in input
values (run_input_values), and unfinished runs (a partial index for /metrics' queue depth and age).

Revision ID: 0007_runs_indexes
Revises: 0006_device_bridge_health
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_runs_indexes"
down_revision = "0006_device_bridge_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_input_values",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "value",
            sa.String(200).with_variant(postgresql.VARCHAR(200, collation="C"), "postgresql"),
            primary_key=True,
        ),
        sa.Column("account_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_run_input_values_account_value", "run_input_values", ["account_id", "value"])
    _index_existing_inputs()
    op.create_index("ix_runs_account_trigger_created", "runs", ["account_id", "trigger", "created_at", "id"])
    # The same expressions as server/runs/models.py: a query uses an expression index only when it
    # repeats the expression.
    op.create_index(
        "ix_runs_account_start", "runs", ["account_id", sa.text("coalesce(started_at, created_at)"), "id"]
    )
    op.create_index(
        "ix_runs_account_duration", "runs", ["account_id", sa.text("coalesce(duration_ms, -1)"), "id"]
    )
    active = sa.text("status IN ('queued', 'running', 'waiting_for_approval')")
    op.create_index(
        "ix_runs_active_status_created",
        "runs",
        ["status", "created_at"],
        sqlite_where=active,
        postgresql_where=active,
    )


def _index_existing_inputs() -> None:
    """The input values of the runs already there (top-level text, numbers and booleans, as
    server.runs.models.input_values makes them for new runs)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO run_input_values (run_id, value, account_id) "
            "SELECT DISTINCT r.id, left(lower(btrim(i.value)), 200), r.account_id "
            "FROM runs r, json_each_text(r.inputs) AS i "
            "WHERE json_typeof(r.inputs -> i.key) IN ('string', 'number', 'boolean') "
            "AND btrim(i.value) <> '' ON CONFLICT DO NOTHING"
        )
        return
    op.execute(
        "INSERT OR IGNORE INTO run_input_values (run_id, value, account_id) "
        "SELECT r.id, substr(lower(trim(CASE i.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        "ELSE i.value END)), 1, 200), r.account_id "
        "FROM runs r, json_each(r.inputs) AS i "
        "WHERE i.type IN ('text', 'integer', 'real', 'true', 'false') AND trim(i.value) <> ''"
    )


def downgrade() -> None:
    op.drop_index("ix_run_input_values_account_value", table_name="run_input_values")
    op.drop_table("run_input_values")
    op.drop_index("ix_runs_active_status_created", table_name="runs")
    op.drop_index("ix_runs_account_duration", table_name="runs")
    op.drop_index("ix_runs_account_start", table_name="runs")
    op.drop_index("ix_runs_account_trigger_created", table_name="runs")
