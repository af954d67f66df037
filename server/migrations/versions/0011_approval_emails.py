"""The approval e-mail outbox.

Revision ID: 0011_approval_emails
Revises: 0010_approvals_unlimited
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_approval_emails"
down_revision = "0010_approvals_unlimited"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_emails",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "approval_id", sa.String(36), sa.ForeignKey("approvals.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("approval_id", "to_address", name="uq_approval_emails_approval_id_to_address"),
    )
    op.create_index(
        "ix_approval_emails_status_next_attempt", "approval_emails", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_approval_emails_status_next_attempt", table_name="approval_emails")
    op.drop_table("approval_emails")
