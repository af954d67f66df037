"""Workflows and their immutable versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # No foreign key: workflows and versions point at each other, and a circular
    # constraint would need ALTER TABLE, which SQLite cannot do. Publishing checks
    # that the version belongs to this workflow.
    published_version_id: Mapped[str | None] = mapped_column(String(36), default=None)
    latest_version_number: Mapped[int] = mapped_column(default=0)
    # Automatic retry of runs that end failed or timeout: up to `auto_retry_max` new runs, the
    # n-th queued `auto_retry_backoff_s * 2**(n-1)` seconds after the failure (0: none).
    auto_retry_max: Mapped[int] = mapped_column(default=0, server_default="0")
    auto_retry_backoff_s: Mapped[int] = mapped_column(default=30, server_default="30")

    @property
    def auto_retry(self) -> dict[str, int]:
        """The automatic retry as the API shows it."""
        return {"max": self.auto_retry_max, "backoff_s": self.auto_retry_backoff_s}


class WorkflowVersion(Base):
    """One saved definition of a workflow: never changed after it is written."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    definition: Mapped[dict[str, Any]]
    # Warnings the validator reported (errors refuse the save, so only warnings are kept).
    problems: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
