"""Wire shapes of the workflow endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from server.schemas import ApiModel


class WorkflowCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(
        description="A workflow definition (see /api/v1/schemas/workflow.json)."
    )


class AutoRetry(ApiModel):
    """Runs of the workflow that end `failed` or `timeout` are queued again, up to `max` times, the
    n-th retry `backoffS × 2^(n-1)` seconds after the failure (trigger `retry`, same device and inputs)."""

    max: int = Field(default=0, ge=0, le=10, description="retries after a failure; 0: none")
    backoff_s: int = Field(default=30, ge=0, le=86400, description="the wait before the first retry")


class WorkflowUpdate(ApiModel):
    """What changes: the name, the automatic retry, or both."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    auto_retry: AutoRetry | None = None


class WorkflowCreated(ApiModel):
    id: str
    version_id: str
    number: int
    warnings: list[dict[str, Any]]


class ValidateRequest(ApiModel):
    definition: Any = Field(description="A draft workflow definition; nothing is saved.")


class DraftProblem(ApiModel):
    pointer: str = Field(description="A JSON pointer into the definition ('' is the whole definition).")
    message: str
    hint: str


class ValidationReport(ApiModel):
    """Every problem of a draft: `errors` refuse a save, `warnings` do not. Both empty: valid."""

    errors: list[DraftProblem]
    warnings: list[DraftProblem]


class VersionCreate(ApiModel):
    definition: dict[str, Any]


class VersionCreated(ApiModel):
    id: str
    workflow_id: str
    number: int
    warnings: list[dict[str, Any]]


class VersionRead(ApiModel):
    id: str
    workflow_id: str
    number: int
    definition: dict[str, Any]
    warnings: list[dict[str, Any]]
    created_at: datetime


class WorkflowRead(ApiModel):
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    published_version_id: str | None
    latest_version_number: int
    auto_retry: AutoRetry


class WorkflowDetail(WorkflowRead):
    latest_version: VersionRead


class PublishRequest(ApiModel):
    version_id: str


class SimulateRequest(ApiModel):
    version_id: str | None = Field(
        default=None, description="The version to run; default: the published one, else the latest."
    )
    inputs: dict[str, Any] = Field(default_factory=dict)
    apps: dict[str, Any] | None = Field(
        default=None, description="An app model (as in golden cases' apps.json); default: the sample apps."
    )
    scenario: dict[str, Any] | None = Field(
        default=None, description="How approvals are answered, as in golden cases' scenario.json."
    )


class SimulatedRun(ApiModel):
    """What every run of the simulator answers, in the run shape of docs/workflow-format.md."""

    id: str
    status: str
    inputs: dict[str, Any] | None = None
    started_at: str
    ended_at: str
    duration_ms: int
    trace: list[dict[str, Any]]
    error_message: str | None
    n_steps: int
    n_failed: int
    n_retries: int
    log: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The engine's execution log: its decisions in order (docs/workflow-format.md)",
    )
    http_simulated: bool = Field(
        description="True when action.http steps got a canned 200 instead of a real call."
    )


class SimulationResult(SimulatedRun):
    """A run of the simulator on a saved version (without device and trigger)."""

    workflow_id: str
    workflow_version_id: str


class DraftSimulateRequest(ApiModel):
    definition: dict[str, Any] = Field(description="A draft workflow definition; nothing is saved.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="The run's inputs.")
    apps: dict[str, Any] | None = Field(
        default=None, description="An app model (docs/app-model.md); default: the sample apps."
    )
    scenario: dict[str, Any] | None = Field(
        default=None,
        description=(
            'How approvals are answered: {"approvals": {"NODE_ID": {"decision": "approved" | "rejected" | '
            '"timeout", "by"?, "note"?}}}; an approval not listed times out.'
        ),
    )
    screens: bool = Field(default=True, description="Draw the phone's screen before and after every step.")
    screen_width: int = Field(default=360, ge=90, le=1080, description="Width of each picture in pixels.")
    screen_format: Literal["png", "webp"] = Field(default="png", description="The pictures' format.")


class ActedOnBounds(ApiModel):
    left: int
    top: int
    right: int
    bottom: int


class ActedOn(ApiModel):
    screen: str = Field(description="The id (in `images`) of the screen the element was found on.")
    bounds: ActedOnBounds = Field(description="The element's bounds in the phone's pixels (`screenSize`).")


class ScreenPicture(ApiModel):
    uri: str = Field(description="The picture as a data: URI (PNG or WebP).")
    width: int
    height: int
    bytes: int = Field(description="The encoded picture's size.")


class ScreenSize(ApiModel):
    width: int
    height: int


class DraftSimulationResult(SimulatedRun):
    """A draft run on the simulator; each trace event with `screens` {before, after, actedOn} when asked."""

    warnings: list[DraftProblem] = Field(description="The validator's warnings about the draft.")
    screen_size: ScreenSize | None = None
    images: dict[str, ScreenPicture] = Field(
        default_factory=dict, description="Each distinct screen once, by id (a hash of what it shows)."
    )
    images_truncated: bool = Field(
        default=False, description="True when the run showed too many distinct screens to draw them all."
    )


class VersionRef(ApiModel):
    id: str
    number: int


class FieldChange(ApiModel):
    pointer: str = Field(description="Where, inside the node (or the workflow): e.g. /params/text.")
    change: str = Field(description="added, removed or changed.")
    before: Any = Field(default=None, description="The old value (absent when added).")
    after: Any = Field(default=None, description="The new value (absent when removed).")


class NodeRef(ApiModel):
    id: str
    kind: Any


class NodeChange(NodeRef):
    fields: list[FieldChange]


class NodeChanges(ApiModel):
    added: list[NodeRef]
    removed: list[NodeRef]
    changed: list[NodeChange]


class VersionDiff(ApiModel):
    """What changed from one version to another: the workflow's fields, and nodes matched by id."""

    workflow_id: str
    from_version: VersionRef = Field(serialization_alias="from")
    to_version: VersionRef = Field(serialization_alias="to")
    workflow: list[FieldChange]
    nodes: NodeChanges
