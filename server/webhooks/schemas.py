"""Request and response bodies of the webhooks API (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class EndpointIn(_In):
    """`POST /api/v1/webhooks`."""

    url: str = Field(min_length=1, max_length=2000, description="Where events are POSTed (http or https).")
    events: list[str] = Field(
        max_length=10,
        description="run.finished, run.failed, approval.waiting, device.offline",
    )
    description: str = Field(default="", max_length=200)


class EndpointPatchIn(_In):
    """`PATCH /api/v1/webhooks/{id}`: what is given changes."""

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, max_length=10)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None


class EndpointOut(_Out):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    secret: str | None = Field(
        default=None,
        description="whsec_…: shown when the endpoint is made, and by GET /webhooks/{id}/secret",
    )


class SecretOut(_Out):
    secret: str


class AttemptOut(_Out):
    attempt: int
    started_at: str
    duration_ms: int
    status_code: int | None
    response: str | None = Field(description="The start of the answer's body (1,000 characters at most)")
    error: str | None


class DeliveryOut(_Out):
    id: str = Field(description="The webhook-id header of every attempt")
    endpoint_id: str
    event_type: str
    event_key: str
    status: str = Field(description="pending, succeeded or failed (every attempt failed)")
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    created_at: str
    completed_at: str | None
    payload: dict[str, Any]
    attempt_log: list[AttemptOut] | None = None
