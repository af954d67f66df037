"""Approvals: a person's answer to a `control.approval` node of a run on a phone.

One row per time a run reaches an approval node (`visit` counts them: a node in a loop asks
again), unique by `(run_id, node_id, visit)` so that the bridge can send the same request
again and get the same row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Approval(Base):
    """One question to people, asked by one visit of a run to an approval node."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(200))
    visit: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING.value)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None: the node's timeoutS was 0, it waits until someone answers (or the run is cancelled).
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(320), default=None)
    # Where the answer was given: `dashboard` (the run's page) or `api`.
    decided_via: Mapped[str | None] = mapped_column(String(16), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        UniqueConstraint("run_id", "node_id", "visit"),
        # The account's list, newest first (optionally by status).
        Index("ix_approvals_account_status_requested", "account_id", "status", "requested_at"),
        Index("ix_approvals_account_requested", "account_id", "requested_at"),
    )
