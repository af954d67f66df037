"""An account's own artifact quota (`phoneflow admin set-artifact-quota`); null: its plan's.

Revision ID: 0024_account_artifact_quota
Revises: 0023_run_event_ids
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_account_artifact_quota"
down_revision = "0023_run_event_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("artifact_quota_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("artifact_quota_bytes")
