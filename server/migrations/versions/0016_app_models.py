"""App models an account keeps (its own apps, recorded by the screen inspector or written).

Revision ID: 0016_app_models
Revises: 0015_paused_runs
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_app_models"
down_revision = "0015_paused_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_models",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_app_models_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_app_models"),
    )
    op.create_index("ix_app_models_account_id_name", "app_models", ["account_id", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_app_models_account_id_name", table_name="app_models")
    op.drop_table("app_models")
