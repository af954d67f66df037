"""Incoming hooks and their calls, counted over the last minute to rate-limit them (in the database,
so the limit holds across server processes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow
from server.runs.models import EventId


class WorkflowHook(Base):
    """A secret URL that queues runs of one workflow on one device; only the token's hash is kept."""

    __tablename__ = "workflow_hooks"
    __table_args__ = (
        # A name is taken while its hook is live; a revoked hook's name can be given again.
        Index(
            "uq_workflow_hooks_live_name",
            "workflow_id",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
        Index(None, "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(20))
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class HookHit(Base):
    """One call of a hook: the calls of the last minute are its rate."""

    __tablename__ = "workflow_hook_hits"
    __table_args__ = (Index(None, "hook_id", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    hook_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflow_hooks.id", ondelete="CASCADE"))
    at: Mapped[datetime]
