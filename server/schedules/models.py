"""The schedules table: a cron expression that creates runs of a workflow on a device."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow


class Schedule(Base):
    """Fire `workflow_id` on `device_id` at every slot of `cron` (read in `timezone`).

    `next_fire_at` is the next slot (UTC). The dispatcher moves it forward with a conditional
    UPDATE (`WHERE id = :id AND next_fire_at = :seen`) and creates the run only when that UPDATE
    changed the row, so one slot makes one run however many server processes poll.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        # The due-query: enabled schedules whose next slot has come.
        Index("ix_schedules_enabled_next_fire_at", "enabled", "next_fire_at"),
        Index("ix_schedules_account_workflow_created", "account_id", "workflow_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_fire_at: Mapped[datetime]
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
