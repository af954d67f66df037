"""Approvals without a time limit (`expires_at` null, the node's timeoutS 0) and where an answer was
given (`decided_via`: dashboard or api).

Revision ID: 0010_approvals_unlimited
Revises: 0009_hooks
Create Date: 2026-11-24
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0010_approvals_unlimited"
down_revision = "0009_hooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a NOT NULL in place: batch mode copies the approvals table (plain indexes
    # only). Reflecting it reads the runs table its key points at, whose expression indexes SQLite
    # cannot reflect: SQLAlchemy warns, and they are not touched.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("approvals") as batch:
            batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)
            batch.add_column(sa.Column("decided_via", sa.String(16), nullable=True))


def downgrade() -> None:
    # An older phoneflow needs a time limit: unlimited approvals read as timed out there.
    op.execute("UPDATE approvals SET expires_at = requested_at WHERE expires_at IS NULL")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("approvals") as batch:
            batch.drop_column("decided_via")
            batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
