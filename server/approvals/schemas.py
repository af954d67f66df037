"""Request and response bodies of the approvals API (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from server.approvals.models import ApprovalStatus
from server.runs.schemas import UtcTime


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class ApprovalRequestIn(_In):
    """What a device sends when its run reaches a `control.approval` node."""

    run_id: str = Field(min_length=1, max_length=36)
    node_id: str = Field(min_length=1, max_length=200)
    visit: int = Field(
        ge=1, le=10_000, description="The n-th time this run reached this node (1 the first time)."
    )
    message: str = Field(default="", max_length=10_000)
    approvers: list[Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        default_factory=list,
        max_length=100,
        description="Emails of who may answer; empty: anyone of the account.",
    )
    timeout_s: float = Field(
        ge=0,
        le=86_400,
        description="Seconds until the approval times out; 0: it waits until someone answers.",
    )


class DecisionIn(_In):
    decision: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=2_000)


class ApprovalOut(_Out):
    id: str
    run_id: str
    node_id: str
    visit: int
    message: str
    approvers: list[str]
    status: ApprovalStatus = Field(
        description="pending, approved, rejected, timed_out (past expiresAt unanswered) or cancelled"
    )
    requested_at: UtcTime
    expires_at: UtcTime | None = Field(description="null: no time limit (the node's timeoutS was 0)")
    decided_at: UtcTime | None
    decided_by: str | None
    decided_via: str | None = Field(default=None, description="dashboard or api")
    note: str | None
