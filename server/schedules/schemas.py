"""Request and response bodies of the schedules API (camelCase, unknown fields refused)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from server.schedules.cron import CRON_EXAMPLE


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


_CRON = "A 5-field crontab (minute hour day-of-month month day-of-week), e.g. " + repr(CRON_EXAMPLE)
_TIMEZONE = "IANA time zone the crontab is read in, e.g. 'Europe/Paris'"


class ScheduleCreate(_In):
    """`POST /api/v1/workflows/{id}/schedules`."""

    device_id: str = Field(min_length=1, max_length=36, description="The device the runs are queued for.")
    cron: str = Field(min_length=1, max_length=200, description=_CRON)
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description=_TIMEZONE)
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="The inputs of every run (checked against the workflow's schema)."
    )
    enabled: bool = True


class ScheduleUpdate(_In):
    """`PATCH /api/v1/schedules/{id}`: only the fields given change; `nextFireAt` is recomputed."""

    device_id: str | None = Field(default=None, min_length=1, max_length=36)
    cron: str | None = Field(default=None, min_length=1, max_length=200, description=_CRON)
    timezone: str | None = Field(default=None, min_length=1, max_length=64, description=_TIMEZONE)
    inputs: dict[str, Any] | None = None
    enabled: bool | None = None


class ScheduleOut(_Out):
    """A schedule; times are ISO-8601 UTC with milliseconds."""

    id: str
    workflow_id: str
    device_id: str
    cron: str
    timezone: str
    inputs: dict[str, Any]
    enabled: bool
    next_fire_at: str = Field(description="The next slot a run is queued at (UTC).")
    last_fired_at: str | None = Field(description="When the last run was queued.")
    last_error: str | None = Field(
        description="Why the last fire made no run, and what to do; null once one does."
    )
    created_at: str
    updated_at: str
