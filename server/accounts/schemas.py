"""Wire shapes of the account endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, StrictInt

from server.accounts.models import Plan
from server.schemas import ApiModel


class AccountRead(ApiModel):
    id: str
    email: str
    plan: Plan
    run_retention_days: int
    retention_cap_days: int
    export_window_days: int
    created_at: datetime
    artifact_bytes_used: int = Field(
        description="Bytes the account's run artifacts take in the artifact store."
    )
    artifact_quota_bytes: int = Field(
        description="The most artifact bytes the account may keep (by plan); an upload beyond it is 413."
    )


class AccountUpdate(ApiModel):
    # Strict: `true` is not a number of days.
    run_retention_days: StrictInt | None = Field(default=None, ge=1, le=100_000)


class TokenCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class TokenRead(ApiModel):
    id: str
    name: str
    display_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The token itself: shown this once, stored only as a hash.")
