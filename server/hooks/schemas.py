"""Request and response bodies of the incoming hooks API (camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class HookIn(BaseModel):
    """`POST /api/v1/workflows/{id}/hooks`."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    device_id: str = Field(
        min_length=1, max_length=36, description="The phone every run of this hook goes to."
    )
    name: str = Field(min_length=1, max_length=100, description="Who calls it (unique within the workflow).")
    rate_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=6000,
        description="Calls a minute before 429 (default PHONEFLOW_HOOK_RATE_PER_MINUTE).",
    )


class HookOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)

    id: str
    workflow_id: str
    device_id: str
    name: str
    token_prefix: str = Field(description="The token's first characters, to tell hooks apart")
    rate_per_minute: int
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    url: str | None = Field(description="The secret URL to POST to: shown once, when the hook is made")
