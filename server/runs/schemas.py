"""Request and response bodies of the runs API, in camelCase (docs/http-api.md)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticSerializationError

from interpreter.trace import Outcome, RunStatus
from server.runs.sql import utc_ms
from server.schemas import ApiModel, Count, DurationMs, UtcDateTime, iso_utc_text

Trigger = Literal["manual", "api", "schedule", "device", "webhook", "retry"]
ReportResult = Literal["stored", "unchanged", "rejected"]
# Every time on the wire: ISO-8601 UTC with milliseconds and a `Z`, like trace events.
UtcTime = Annotated[datetime, PlainSerializer(utc_ms, return_type=str)]

MAX_TRACE_EVENTS = 10_000  # the engine stops a run after 10,000 node executions
_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# The same with ASCII digits only (`\d` is any Unicode digit): what the engine writes, matched in half
# the time of the pattern above, which then only looks at the rest (a report checks one a trace event).
_CANONICAL_ASCII_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class _In(BaseModel):
    """A request body: camelCase, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Out(BaseModel):
    """A response body: camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class TraceEventIn(_In):
    """One trace event as the engine writes it (docs/workflow-format.md, "Trace event")."""

    seq: Count
    node_id: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=100)
    outcome: Outcome
    message: str | None = Field(default=None, max_length=10_000)
    started_at: str = Field(max_length=40, description="ISO-8601 with a time zone; stored as UTC with ms")
    duration_ms: DurationMs
    attempts: Count
    output: dict[str, Any] = Field(default_factory=dict)

    @field_validator("started_at")
    @classmethod
    def _canonical_time(cls, value: str) -> str:
        # The engine already writes the canonical form; only other forms pay for parsing. The
        # canonical text is what two reports of one event are compared on.
        if _CANONICAL_ASCII_TIME.fullmatch(value) or _CANONICAL_TIME.fullmatch(value):
            return value
        return utc_ms(iso_utc_text(value))

    def stored_json(self) -> str:
        """`stored_form()` as compact JSON text, made by pydantic's serializer (the same keys in the
        same order, several times faster than `json.dumps` of the dict).

        The serializer is called directly: `model_dump_json` makes the same call, but passing its
        15 keyword arguments costs more than the dump of a small event (a report makes one per event).
        """
        try:
            return self.__pydantic_serializer__.to_json(self, by_alias=True).decode()
        except PydanticSerializationError:  # text pydantic cannot encode (a lone surrogate): the slow way
            return json.dumps(self.stored_form(), separators=(",", ":"))

    def stored_form(self) -> dict[str, Any]:
        """The canonical JSON kept in the database; two reports of one event compare equal on it."""
        return {
            "seq": self.seq,
            "nodeId": self.node_id,
            "kind": self.kind,
            "outcome": self.outcome.value,
            "message": self.message,
            "startedAt": self.started_at,
            "durationMs": self.duration_ms,
            "attempts": self.attempts,
            "output": self.output,
        }


MAX_LOG_ENTRIES = 400  # the engine keeps 300 (interpreter/run_log.py): room for a newer engine's
MAX_LOG_VALUES_CHARS = 8_000  # an entry's values as JSON (the engine cuts them near 600 characters)
_LOG_KIND = r"^[a-z][a-z0-9-]{0,39}$"


def _surely_within(values: dict[str, Any], limit: int) -> bool:
    """Whether `values` as JSON are surely at most `limit` characters, told without encoding them: an
    upper bound for flat values (a character escapes to at most 6 characters; a float, an integer
    under 10**30, true, false or null take at most 32; quotes, colon and comma 4 a pair); False
    when unsure (nested values, longer integers, other types)."""
    bound = 2
    for key, item in values.items():
        if isinstance(item, str):
            bound += 6 * (len(key) + len(item)) + 4
        elif item is None or isinstance(item, bool | float) or (isinstance(item, int) and abs(item) < 10**30):
            bound += 6 * len(key) + 36
        else:
            return False
        if bound > limit:
            return False
    return True


class LogEntryIn(_In):
    """One entry of the engine's execution log (docs/workflow-format.md, "Execution log")."""

    seq: Count
    at_ms: DurationMs
    step: Count | None = None
    node_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(pattern=_LOG_KIND, description="start, wait-poll, condition, retry, edge, end, …")
    text: str = Field(max_length=2_000)
    values: dict[str, Any] = Field(default_factory=dict)
    count: Count | None = Field(default=None, description="a coalesced poll: how many looks")
    last_at_ms: DurationMs | None = Field(default=None, description="a coalesced poll: the last look")

    @field_validator("values")
    @classmethod
    def _bounded_values(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _surely_within(value, MAX_LOG_VALUES_CHARS):  # most entries: a final report's log has dozens
            return value
        size = len(json.dumps(value, ensure_ascii=False, default=str))
        if size > MAX_LOG_VALUES_CHARS:
            raise ValueError(
                f"the entry's values are {size:,} characters of JSON, more than {MAX_LOG_VALUES_CHARS:,}: "
                "cut long values (the engine cuts them at 600)"
            )
        return value

    def stored_form(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, exclude={"count", "last_at_ms"})
        if self.count is not None:
            data["count"] = self.count
            data["lastAtMs"] = self.last_at_ms
        return data


class RunReportIn(_In):
    """One run in a `runs.report` batch: its whole state so far, trace included."""

    id: str = Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
    workflow_id: str = Field(max_length=36)
    workflow_version_id: str = Field(max_length=36)
    device_id: str | None = Field(default=None, max_length=36)
    status: RunStatus
    trigger: Trigger = "device"
    inputs: dict[str, Any] = Field(default_factory=dict)
    started_at: UtcDateTime | None = None
    ended_at: UtcDateTime | None = None
    duration_ms: DurationMs | None = None
    trace: list[TraceEventIn] = Field(default_factory=list, max_length=MAX_TRACE_EVENTS)
    error_message: str | None = Field(default=None, max_length=10_000)
    n_steps: Count | None = None
    n_failed: Count | None = None
    n_retries: Count | None = None
    log: list[LogEntryIn] | None = Field(
        default=None,
        max_length=MAX_LOG_ENTRIES,
        description="The engine's execution log (optional; sent with the final report)",
    )

    @field_validator("id")
    @classmethod
    def _lower_id(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _trace_is_consecutive(self) -> RunReportIn:
        # A report carries the whole trace so far, so seqs run 0.. or 1.. without gaps;
        # "extends the stored trace" is then a statement about seqs.
        if self.trace:
            first = self.trace[0].seq
            if first not in (0, 1):
                raise ValueError(f"trace must start at seq 0 or 1, not {first}; send the whole trace")
            for index, event in enumerate(self.trace):
                if event.seq != first + index:
                    raise ValueError(
                        f"trace[{index}] has seq {event.seq}, expected {first + index}: "
                        "seqs must increase by one without gaps"
                    )
        if self.status is RunStatus.QUEUED and self.trace:
            raise ValueError("a queued run has no trace yet; report it as running")
        return self

    def trace_pairs_json(self) -> str:
        """The trace as one JSON array of `[seq, stored_json()]` pairs, compact, made by one call of
        pydantic's serializer: half the CPU of one `stored_json()` call per event joined in Python."""
        try:
            return _SEQ_AND_EVENT_LIST.serializer.to_json(
                [(event.seq, event) for event in self.trace], by_alias=True
            ).decode()
        except PydanticSerializationError:  # text pydantic cannot encode (a lone surrogate): the slow way
            return "[" + ",".join(f"[{event.seq},{event.stored_json()}]" for event in self.trace) + "]"


_SEQ_AND_EVENT_LIST = TypeAdapter(list[tuple[int, TraceEventIn]])


class RunsReportIn(_In):
    """`POST /api/v1/runs.report`: 1 to 100 runs."""

    runs: list[RunReportIn] = Field(min_length=1, max_length=100)


class RunReportResultOut(_Out):
    """What happened to one reported run."""

    id: str
    result: ReportResult
    reason: str | None = None
    # Set when someone asked to cancel this (unfinished) run: the device stops it after the
    # step in flight and reports it `cancelled`. The quickest way a moving run hears of it.
    cancel_requested: bool = False


class RunsReportOut(_Out):
    runs: list[RunReportResultOut]


class RunSummaryOut(_Out):
    """A run without its trace: list items and the `run.updated` payload."""

    id: str
    workflow_id: str
    workflow_version_id: str
    device_id: str | None
    status: RunStatus
    trigger: Trigger
    triggered_by: str | None = Field(
        default=None,
        description=(
            "Who or what asked: token:<id> (<name>) for an API token, a person's email (the dashboard), "
            "schedule:<id>, hook:<name>, auto-retry; null for a run a device made"
        ),
    )
    inputs: dict[str, Any]
    started_at: UtcTime | None
    ended_at: UtcTime | None
    duration_ms: int | None
    error_message: str | None
    n_steps: int | None
    n_failed: int | None
    n_retries: int | None
    trace_len: int
    cancel_requested: bool
    retry_of: str | None = Field(default=None, description="The run this one runs again (trigger retry)")
    attempt: int = Field(default=1, description="1 for a first run, one more for each retry")
    not_before: UtcTime | None = Field(
        default=None, description="An automatic retry is not claimed before this moment (its backoff)"
    )
    batch_id: str | None = Field(default=None, description="The batch the run was triggered in")
    device_tag: str | None = Field(
        default=None,
        description="Any free phone with this tag may take the run (deviceId null until one does)",
    )
    created_at: UtcTime
    updated_at: UtcTime


class WaitingOut(_Out):
    """Why a queued run waits."""

    reason: str = Field(
        description="backoff, device_revoked, no_bridge, device_offline, bridge_not_serving, device_busy, "
        "queued_behind, claiming, no_tagged_phone, tagged_phones_busy"
    )
    message: str
    since: UtcTime | None = None
    run_id: str | None = None


class RunOut(RunSummaryOut):
    """One run with its trace."""

    retried_by: list[str] = Field(default_factory=list, description="The runs that run this one again")
    waiting: WaitingOut | None = Field(default=None, description="While queued: why the run waits")
    trace: list[dict[str, Any]]


class RunPageOut(_Out):
    """A page of runs, newest first; pass `nextCursor` as `cursor` for the next page."""

    runs: list[RunSummaryOut]
    next_cursor: str | None


class TriggerRunIn(_In):
    """`POST /api/v1/workflows/{id}/runs`."""

    device_id: str | None = Field(default=None, min_length=1, max_length=36)
    device_tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="instead of deviceId: the first free phone with this tag takes the run",
    )
    inputs: dict[str, Any] = Field(default_factory=dict)
    frames: Literal["every", "failures", "off"] | None = Field(
        default=None,
        description=(
            "when the bridge keeps this run's screens, instead of the workflow's `frames`: after every "
            "step that touches the phone, after failed steps only, or never (the bridge may lower it)"
        ),
    )

    @model_validator(mode="after")
    def _one_target(self) -> TriggerRunIn:
        if (self.device_id is None) == (self.device_tag is None):
            raise ValueError(
                "give deviceId (one phone) or deviceTag (any free phone with that tag), not both"
            )
        return self


class TriggerBatchIn(_In):
    """`POST /api/v1/workflows/{id}/batches`: one run per phone, named by ids or by a tag."""

    device_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    tag: str | None = Field(default=None, min_length=1, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_target(self) -> TriggerBatchIn:
        if (self.device_ids is None) == (self.tag is None):
            raise ValueError("give deviceIds (these phones) or tag (every phone with it), not both")
        return self


class BatchOut(_Out):
    """A batch: its runs (one per phone) and how far they got."""

    id: str
    workflow_id: str
    total: int
    done: int = Field(description="runs that ended")
    counts: dict[str, int] = Field(description="runs by status")
    runs: list[RunSummaryOut]


class ClaimIn(ApiModel):
    """What a claiming bridge asks for besides the run (an empty body, or none, asks for nothing)."""

    lease: bool = Field(
        default=False,
        description="Ask for a lease on the claimed run (`leaseMs` in the answer): its first steps start "
        "without asking the step gate, as after a gate that granted one.",
    )
    report: RunReportIn | None = Field(
        default=None,
        description="The final report of the run this phone just ended, as a runs.report run object, "
        "stored by runs.report's rules in the claim's transaction before the claim: one request per run "
        "instead of a report and a claim. Send it only to a server whose claim answered "
        "`acceptsReport: true`.",
    )


class ClaimedRunOut(_Out):
    """A claimed run, the definition of the workflow version it runs, and the denylist it obeys; with a
    carried report and no run queued, `run` is null and only `report` and the flags are there."""

    run: RunSummaryOut | None
    definition: dict[str, Any] | None = None
    denylist: dict[str, Any] | None = Field(
        default=None, description='The effective package denylist: {"version": ..., "patterns": [...]}'
    )
    report: RunReportResultOut | None = Field(
        default=None, description="What became of the carried report (a runs.report answer's entry)."
    )
    accepts_report: bool = Field(
        default=False, description="This server's claim takes the final report of the phone's last run."
    )
    grants_lease: bool = Field(default=False, description="This server grants leases (see the step gate).")
    lease_ms: int | None = Field(
        default=None, description="The lease on the claimed run, when asked for (`lease`) and granted."
    )


class ArtifactOut(_Out):
    name: str
    content_type: str
    size: int
    created_at: UtcTime


class StatusCountOut(_Out):
    status: RunStatus
    count: int


class DayStatsOut(_Out):
    day: str
    counts: dict[str, int]
    success_rate: float | None = Field(description="successes / ended runs of the day")
    average_duration_ms: float | None = Field(description="of the day's ended runs")


class WorkflowStatsOut(_Out):
    workflow_id: str
    name: str | None
    runs: int
    successes: int
    failures: int = Field(description="failed or timed out")
    success_rate: float | None
    average_duration_ms: float | None


class DeviceStatsOut(_Out):
    device_id: str | None
    name: str | None
    runs: int
    busy_ms: int = Field(description="the summed durations of its ended runs in the period")
    utilisation: float = Field(description="busyMs / the period's length (0–1)")


class FailingStepOut(_Out):
    workflow_id: str
    workflow_name: str | None
    node_id: str
    kind: str
    failures: int
    last_at: str
    last_message: str | None


class StatsOut(_Out):
    """`GET /api/v1/stats?days=N`: the last N calendar days (UTC), today included."""

    days: int
    from_: str = Field(alias="from", description="the period's first day, YYYY-MM-DD")
    to: str = Field(description="its last day (today)")
    total_runs: int
    finished_runs: int
    success_rate: float | None
    average_duration_ms: float | None
    last_incident: RunSummaryOut | None
    per_day: list[DayStatsOut]
    top_workflows: list[WorkflowStatsOut]
    per_device: list[DeviceStatsOut]
    failing_steps: list[FailingStepOut] = Field(description="the steps that failed most in ended runs")
