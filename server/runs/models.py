"""The runs tables: runs, their trace events, the `run.updated` event log, and artifacts.

Idempotency of `runs.report` rests on these keys: a run's id is its primary key (made by
whoever creates the run), a trace event is unique by `(run_id, seq)`, and a run carries
`status_rank` and `trace_len` so that a conditional UPDATE can refuse to move it backwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    false,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, utcnow

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (autoincrement); PostgreSQL gets a bigint.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Run(Base):
    """One execution of a workflow version on one device."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workflow_versions.id", ondelete="CASCADE")
    )
    device_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("devices.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(32))
    # RunStatus.rank plus a tie-break inside rank 1 (see report.progress_rank): the column the
    # conditional UPDATE of runs.report compares, so a status never moves backwards.
    status_rank: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    # Who or what asked for the run: `token:<id> (<name>)` (an API token, never the token itself),
    # a person's email (the dashboard), `schedule:<id>`, `hook:<name>`, `auto-retry`; null: a device made it.
    triggered_by: Mapped[str | None] = mapped_column(String(320), default=None)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_message: Mapped[str | None] = mapped_column(Text)
    n_steps: Mapped[int | None] = mapped_column(Integer)
    n_failed: Mapped[int | None] = mapped_column(Integer)
    n_retries: Mapped[int | None] = mapped_column(Integer)
    trace_len: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    # Retries: the run this one runs again (null for a first run), which attempt it is (1 for a
    # first run), and the moment before which no device may claim it (an automatic retry's backoff).
    retry_of: Mapped[str | None] = mapped_column(String(36), default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    # Fleet dispatch: the batch the run belongs to (one run per phone, triggered together), and for a
    # run that any free phone with a tag may take, that tag (`device_id` stays null until one claims it).
    batch_id: Mapped[str | None] = mapped_column(String(36), default=None)
    device_tag: Mapped[str | None] = mapped_column(String(64), default=None)
    # When the bridge keeps this run's screens, given at trigger (`every`, `failures`, `off`); null:
    # the workflow's `frames` (sent with the claim, server/runs/frames.py run_frames).
    frames: Mapped[str | None] = mapped_column(String(8), default=None)
    # Until when someone watches the run live (the dashboard's toggle): the bridge streams frames.
    live_until: Mapped[datetime | None]
    # Until when the run's bridge may start steps without asking the step gate (its lease,
    # server/runs/lease.py); a cancel or a pause is answered only once it has run out.
    lease_until: Mapped[datetime | None]
    # Whether a frame of the run is stored: set by the frame's upload (server/runs/video.py
    # `frame_stored`), read when the run ends, so that a run without frames costs its video nothing.
    has_frames: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One index per list filter, each ending in the keyset (created_at, id) so that
        # "newest first, after this cursor" is an index range scan at a million runs.
        Index("ix_runs_account_created", "account_id", "created_at", "id"),
        Index("ix_runs_account_status_created", "account_id", "status", "created_at", "id"),
        Index("ix_runs_account_workflow_created", "account_id", "workflow_id", "created_at", "id"),
        Index("ix_runs_account_device_created", "account_id", "device_id", "created_at", "id"),
        Index("ix_runs_account_trigger_created", "account_id", "trigger", "created_at", "id"),
        # Claiming: the oldest queued run of one device.
        Index("ix_runs_device_status_created", "device_id", "status", "created_at"),
        # The runs that run a run again ("retried by").
        Index("ix_runs_retry_of", "retry_of"),
        Index("ix_runs_batch", "batch_id", "created_at"),
        # Claiming a run any free phone with a tag may take: the oldest queued one of the tag.
        Index("ix_runs_account_tag_status_created", "account_id", "device_tag", "status", "created_at"),
    )


# The other orders of the runs list (server/runs/listing.py), as expression indexes: the query
# must repeat each expression exactly for the database to use its index.
def start_key() -> ColumnElement[datetime]:
    """When a run started, or was made while it has not started: the dashboard's "Started"."""
    return func.coalesce(Run.started_at, Run.created_at)


Index("ix_runs_account_start", Run.account_id, start_key(), Run.id)


def duration_key() -> ColumnElement[int]:
    """How long a run took; -1 (the shortest) while it has not ended. A literal -1, not a bound
    parameter: the query's expression must be the index's."""
    return func.coalesce(Run.duration_ms, literal_column("-1"))


Index("ix_runs_account_duration", Run.account_id, duration_key(), Run.id)

# Runs not finished yet, by status: a partial index (a few rows however many runs there are) for the
# queue's depth and age on /metrics. A query uses it only when its WHERE repeats `ACTIVE_CONDITION`
# with the values inline (`active_run()`), not as bound parameters.
ACTIVE_RUN_STATUSES = ("queued", "running", "waiting_for_approval", "paused")
ACTIVE_CONDITION = "status IN ('queued', 'running', 'waiting_for_approval', 'paused')"


def active_run() -> ColumnElement[bool]:
    """`ACTIVE_CONDITION` for a query, its values rendered inline."""
    return Run.status.in_(bindparam("active_statuses", list(ACTIVE_RUN_STATUSES), literal_execute=True))


Index(
    "ix_runs_active_status_created",
    Run.status,
    Run.created_at,
    sqlite_where=text(ACTIVE_CONDITION),
    postgresql_where=text(ACTIVE_CONDITION),
)


# Compared byte by byte on both databases: a prefix is then an index range (server/runs/sql.py).
SearchText = String(200).with_variant(postgresql.VARCHAR(200, collation="C"), "postgresql")


class RunInputValue(Base):
    """A run's top-level input value, lowercased (the first 200 characters): what the runs list's
    search looks values up in, an index range instead of reading every run's inputs."""

    __tablename__ = "run_input_values"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(SearchText, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36))

    __table_args__ = (Index("ix_run_input_values_account_value", "account_id", "value"),)


def input_values(inputs: dict[str, Any]) -> list[str]:
    """The searchable forms of a run's top-level input values: text as it is, numbers and booleans as
    JSON writes them; lowercased, cut at 200 characters, each once. Nested values are not kept."""
    values: list[str] = []
    for value in inputs.values():
        if isinstance(value, str):
            text_value = value
        elif isinstance(value, bool):
            text_value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text_value = str(value)
        else:
            continue
        folded = text_value.strip().lower()[:SEARCH_VALUE_CHARS]
        if folded and folded not in values:
            values.append(folded)
    return values


SEARCH_VALUE_CHARS = 200


class RunDailyStat(Base):
    """Ended runs per account, UTC day of creation and final status, counted twice: by workflow
    (`dimension` 'workflow', `key` its id) and by device (`dimension` 'device', `key` its id or '').
    What the analytics sum instead of reading every run (server/runs/rollup.py); the rows grow
    with days × (workflows + devices), not with runs. A count may be spread over `shard`s (one per
    database connection that wrote it, modulo `rollup.SHARDS`): readers sum them."""

    __tablename__ = "run_daily_stats"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer)
    timed: Mapped[int] = mapped_column(Integer)
    duration_sum: Mapped[int] = mapped_column(BigInteger)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="0")


class RunStepFailure(Base):
    """A failed step of an ended run: which node, of what kind, why, when."""

    __tablename__ = "run_step_failures"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36))
    workflow_id: Mapped[str] = mapped_column(String(36))
    node_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_run_step_failures_account_at", "account_id", "at"),)


class TraceEventRow(Base):
    """One trace event of a run, stored as the design's JSON; `(run_id, seq)` is the key.

    No foreign key to `runs`: a 50-step report inserts 50 events, and the key's check of each cost
    more than half of what PostgreSQL spends on the report. Events are written only after their
    run's row in the same transaction (runs.report, the step gate); a trigger on `runs` deletes a
    run's events with it (migration 0027)."""

    __tablename__ = "trace_events"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)


class RunLogRow(Base):
    """A run's execution log as the engine wrote it (`interpreter.run_log`), from its final report.

    Kept apart from `runs`, so that listing runs never reads it; bounded by the engine and by
    the report's schema (server/runs/schemas.py `LogEntryIn`)."""

    __tablename__ = "run_logs"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunEvent(Base):
    """The `run.updated` log: its id is the SSE `id:` and what `Last-Event-ID` replays from.

    Rows are written in the transaction that changes the run, so an event exists exactly when
    its change is committed. No foreign key to runs: retention removes both independently.
    """

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(36))
    run_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The SSE event name; null is `run.updated` (the run changed), `run.frame` a step's screen arrived.
    event: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_run_events_account_id_id", "account_id", "id"),
        Index("ix_run_events_created_at", "created_at"),
        # AUTOINCREMENT: SQLite must never hand out an id again after retention deletes rows.
        {"sqlite_autoincrement": True},
    )


class Artifact(Base):
    """A file a run produced (a screenshot); kept out of the trace so traces stay comparable.

    The bytes are in the artifact store under `store_key` (server/artifact_store); `data` holds
    them only for rows stored before the store existed, until they are moved (then it is null)."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    store_key: Mapped[str | None] = mapped_column(String(300), default=None)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # A frame's step and screen: {"seq", "nodeId", "kind", "outcome", "bounds", "screen", "takenAt"}.
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        # The account's bytes in use (the quota) from the index alone.
        Index("ix_artifacts_account_size", "account_id", "size"),
        {"sqlite_autoincrement": True},
    )
