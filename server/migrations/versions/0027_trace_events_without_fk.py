"""Trace events without a foreign key to their run: a run's events go with it by a trigger instead.

A phone's report of a 50-step run inserts 50 trace events, and the foreign key had PostgreSQL look
up the run 50 times (one referential check per row): 0.6 ms of the database's 1.0 ms a report.
Events are only ever written after their run's row in the same transaction (runs.report, the step
gate), so the check never refused anything; what the key also did, delete a run's events with it,
a trigger on `runs` does now (retention deletes them first anyway).

Revision ID: 0027_trace_events_without_fk
Revises: 0026_run_lease
Create Date: 2026-11-29
"""

from __future__ import annotations

import warnings

from alembic import op

from server.db import NAMING_CONVENTION

revision = "0027_trace_events_without_fk"
down_revision = "0026_run_lease"
branch_labels = None
depends_on = None

_FK = "fk_trace_events_run_id_runs"

_PG_FUNCTION = """
CREATE FUNCTION phoneflow_delete_trace_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM trace_events t USING gone WHERE t.run_id = gone.id;
    RETURN NULL;
END $$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER trace_events_go_with_their_run AFTER DELETE ON runs "
    "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION phoneflow_delete_trace_events()"
)
_SQLITE_TRIGGER = (
    "CREATE TRIGGER trace_events_go_with_their_run AFTER DELETE ON runs FOR EACH ROW "
    "BEGIN DELETE FROM trace_events WHERE run_id = OLD.id; END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_FK, "trace_events", type_="foreignkey")
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        return
    # SQLite cannot drop a key in place: batch mode copies the table. Reflecting it reads the runs
    # table its key points at, whose expression indexes SQLite cannot reflect: SQLAlchemy warns, and
    # they are not touched.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("trace_events", naming_convention=NAMING_CONVENTION) as batch:
            batch.drop_constraint(_FK, type_="foreignkey")
    op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trace_events_go_with_their_run ON runs")
        op.execute("DROP FUNCTION phoneflow_delete_trace_events()")
        op.create_foreign_key(_FK, "trace_events", "runs", ["run_id"], ["id"], ondelete="CASCADE")
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("trace_events", naming_convention=NAMING_CONVENTION) as batch:
            batch.create_foreign_key(_FK, "runs", ["run_id"], ["id"], ondelete="CASCADE")
    op.execute("DROP TRIGGER trace_events_go_with_their_run")
