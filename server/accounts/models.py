"""Accounts and their personal API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


# Days of runs an account may keep, by plan: free 30, pro 180, team 365.
RETENTION_CAP_DAYS: dict[Plan, int] = {Plan.FREE: 30, Plan.PRO: 180, Plan.TEAM: 365}
# How far back a JSON export may reach, by plan.
EXPORT_WINDOW_DAYS: dict[Plan, int] = {Plan.FREE: 30, Plan.PRO: 90, Plan.TEAM: 90}
DEFAULT_RETENTION_DAYS = 30


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    plan: Mapped[str] = mapped_column(String(16), default=Plan.FREE.value)
    run_retention_days: Mapped[int] = mapped_column(default=DEFAULT_RETENTION_DAYS)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # This account's own artifact quota, set by an administrator; None: its plan's.
    artifact_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def plan_enum(self) -> Plan:
        return Plan(self.plan)

    @property
    def retention_cap_days(self) -> int:
        return RETENTION_CAP_DAYS[self.plan_enum]

    @property
    def export_window_days(self) -> int:
        return EXPORT_WINDOW_DAYS[self.plan_enum]


class ApiToken(Base):
    """A personal API token; only its sha256 hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so a person can tell their tokens apart.
    display_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
