"""Wire shapes of the denylist endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from server.schemas import ApiModel


class DenylistEntryCreate(ApiModel):
    pattern: str = Field(
        min_length=1, max_length=255, description="A package name or a glob such as com.bank.*"
    )


class DenylistEntryRead(ApiModel):
    id: str
    pattern: str
    created_at: datetime


class DenylistRead(ApiModel):
    global_entries: list[str] = Field(description="From the server's configuration; read-only here.")
    account_entries: list[DenylistEntryRead]
