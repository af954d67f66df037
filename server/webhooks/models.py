"""Outgoing webhooks: endpoints an account registers, deliveries (the outbox and its log), attempts.

A delivery is one event for one endpoint, unique by `(endpoint_id, event_key)`: the key names the
event (`run.finished:<run id>`), so however many times or processes try to enqueue it, one row
exists. Its `body` is the exact JSON text signed and sent on every attempt, and its id is the
Standard Webhooks `webhook-id` a receiver deduplicates on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow
from server.runs.models import EventId


class WebhookEvent(StrEnum):
    """What an endpoint can be told of."""

    RUN_FINISHED = "run.finished"  # any final status: success, failed, cancelled, timeout
    RUN_FAILED = "run.failed"  # failed or timeout
    APPROVAL_WAITING = "approval.waiting"  # a run asks people for an approval
    DEVICE_OFFLINE = "device.offline"  # a paired device stopped calling in
    TEST = "webhook.test"  # sent on request, to every endpoint asked


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SUCCEEDED = "succeeded"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed; redeliver to try again


class WebhookEndpoint(Base):
    """A URL of an account's that hears of the events it lists, signed with its secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # `whsec_` + base64 of 32 random bytes (Standard Webhooks). Kept as is: signing needs it.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: waiting, delivered, or given up on, with its last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_key"),
        # The delivery job's due query: pending ones by when they are due.
        Index("ix_webhook_deliveries_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_<32 hex>: the webhook-id
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Failed attempts since it was queued or last redelivered: it is given up at webhook_max_attempts.
    round_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # While an attempt is under way: until when the process that took it owns it. A process that
    # dies mid-attempt lets the lease run out, and another process tries again.
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_response: Mapped[str | None] = mapped_column(Text, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """One try of a delivery: when, how long, and what the endpoint answered (or what went wrong)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response_excerpt: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class DeviceOfflineNotice(Base):
    """The `last_seen_at` of each device whose going offline was last told: told once per silence."""

    __tablename__ = "webhook_device_offline"

    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    last_seen_at: Mapped[datetime]
