"""Run-event ids without a lock (PostgreSQL): a transaction has its transaction id before it takes an
event id, so the event tail can tell an id still in flight from one given up (server/runs/event_order.py).

Until now every transaction writing `run_events` took one advisory lock until its commit, so that ids
became visible in id order: it made every report in every server process wait for the commit (and
the disk flush) of the one before. Now ids may become visible out of order and the tail waits at a
gap only while a transaction that may hold the missing id is still running.

Revision ID: 0023_run_event_ids
Revises: 0022_run_frames_setting
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_run_event_ids"
down_revision = "0022_run_frames_setting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has one writer at a time: ids become visible in order
    # pg_current_xact_id() assigns the transaction its id if it has none yet, so any transaction
    # holding an event id appears in every later snapshot's list of running transactions.
    op.execute(
        """
        CREATE FUNCTION phoneflow_next_run_event_id(sequence regclass) RETURNS bigint
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_current_xact_id();
            RETURN nextval(sequence);
        END
        $$
        """
    )
    sequence = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence('run_events', 'id')"))
    literal = str(sequence.scalar_one()).replace("'", "''")
    op.execute(
        "ALTER TABLE run_events ALTER COLUMN id "
        f"SET DEFAULT phoneflow_next_run_event_id('{literal}'::regclass)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE run_events ALTER COLUMN id "
        "SET DEFAULT nextval(pg_get_serial_sequence('run_events', 'id')::regclass)"
    )
    op.execute("DROP FUNCTION phoneflow_next_run_event_id(regclass)")
