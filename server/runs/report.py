"""`runs.report` ingestion: idempotent under any number of concurrent, out-of-order retries.

The rules of docs/http-api.md ("runs.report"), and where each is enforced:

* unknown id → stored. `INSERT ... ON CONFLICT (id) DO NOTHING`: of any number of concurrent
  first reports (in any number of server processes) exactly one inserts; the others see a
  conflict and go on as a report about an existing run.
* same content → unchanged; a stale report (earlier status, a prefix of the stored trace) →
  unchanged; a newer one (further along, the stored trace as its prefix) → stored.
  The newer state is written with a conditional UPDATE that only matches the state this
  transaction judged against (compare-and-set on `status` and `trace_len`, plus the monotone
  guard `status_rank <= :new AND trace_len <= :new_len`). When another writer got there
  first the UPDATE matches nothing, and the run is read again and judged again. Trace events
  are keyed by `(run_id, seq)`, so a stored event can never be replaced.
* a contradiction (another terminal status, another event at a stored seq, another device,
  another workflow version) → rejected with a reason; the other runs of the batch still count.

No lock in process memory: correctness comes from the keys and the conditional writes, so it
holds with several server processes on one database. Runs are handled in id order so that
concurrent batches on PostgreSQL take row locks in one order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus, can_move
from server.db import utcnow
from server.runs.fresh_run import log_json, store_fresh_run
from server.runs.run_logs import store_logs
from server.runs.schemas import ReportResult, RunReportIn
from server.runs.sql import dialect_name, insert_input_values, insert_runs_if_new, insert_trace_rows
from server.runs.stored_run import Stored, StoredRun, read_stored, store_newer, store_recorded_pg

# How often one run is read and judged again when concurrent writers keep moving it; the
# lifecycle is short (a few statuses, a trace that only grows), so this is never reached
# in practice, and reaching it is an answer ("retry"), not a wrong write.
MAX_ATTEMPTS = 50


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report does to a run: `stored`, `unchanged` or `rejected` (with a reason)."""

    result: ReportResult
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """One entry of the answer, in the order the runs were sent."""

    id: str
    result: ReportResult
    reason: str | None


def progress(status: RunStatus, trace_len: int) -> tuple[int, int, int]:
    """How far along a run is: status rank, then trace length, then approval-pending.

    `running ⇄ waiting_for_approval ⇄ paused` share a rank; at one trace length, waiting is further
    along (the approval is asked after the steps before it ran). A device reports `paused` only as
    `running` would be judged: the server moves runs in and out of `paused`.
    """
    return (status.rank, trace_len, 1 if status is RunStatus.WAITING_FOR_APPROVAL else 0)


def judge(
    stored: StoredRun, report: RunReportIn, device_id: str, stored_events: Mapping[int, dict[str, Any]]
) -> Verdict:
    """Decide what `report` does to `stored`, whose events at the report's seqs are `stored_events`."""
    if stored.device_id is not None and stored.device_id != device_id:
        return Verdict(
            "rejected", f"run {report.id} belongs to another device; a device reports only its own runs"
        )
    if stored.workflow_version_id != report.workflow_version_id:
        return Verdict(
            "rejected",
            f"run {report.id} is stored for workflow version {stored.workflow_version_id}, "
            f"the report names {report.workflow_version_id}",
        )
    for event in report.trace:
        known = stored_events.get(event.seq)
        if known is not None and known != event.stored_form():
            return Verdict(
                "rejected",
                f"trace event seq {event.seq} ({event.node_id}, {event.outcome.value}) differs from the "
                f"stored one ({known.get('nodeId')}, {known.get('outcome')}); a trace only grows, "
                "stored events never change",
            )
    new_len = len(report.trace)
    if stored.status.terminal:
        if report.status.terminal and report.status != stored.status:
            return Verdict(
                "rejected",
                f"run {report.id} already ended {stored.status.value}; the report says {report.status.value}",
            )
        if new_len > stored.trace_len:
            return Verdict(
                "rejected",
                f"run {report.id} ended {stored.status.value} with {stored.trace_len} trace events; "
                f"the report has {new_len}",
            )
        return Verdict("unchanged")
    if report.status.terminal:
        if new_len < stored.trace_len:
            return Verdict(
                "rejected",
                f"the report ends run {report.id} {report.status.value} with {new_len} trace events, "
                f"but {stored.trace_len} are stored",
            )
        return Verdict("stored")
    new_progress = progress(report.status, new_len)
    if new_progress > progress(stored.status, stored.trace_len) and can_move(stored.status, report.status):
        return Verdict("stored")
    return Verdict("unchanged")


class Ingested(NamedTuple):
    """What `ingest_reports` did: the answer per run, the ids that changed, the rows of the runs it
    changed as it left them (as `select(Run.__table__)` would read them now), by id, and the runs
    whose run.updated event (`recorded`) and rollup count (`counted`) it wrote already (fresh_run.py,
    stored_run.py)."""

    results: list[IngestResult]
    changed: list[str]
    rows: dict[str, Row[Any]]
    recorded: frozenset[str] = frozenset()
    counted: frozenset[str] = frozenset()


def ingest_reports(
    session: Session, *, account_id: str, device_id: str, reports: Sequence[RunReportIn]
) -> Ingested:
    """Apply a batch of reports from one device: the answer per run, the ids that changed and the rows
    of the runs changed.

    Only flushes: the caller's transaction commits (and then publishes `run.updated`).
    """
    verdicts: dict[int, Verdict] = {}
    versions = _known_versions(session, account_id, {r.workflow_version_id for r in reports})
    candidates: list[tuple[int, RunReportIn]] = []
    for index, report in enumerate(reports):
        problem = precheck(report, device_id, versions)
        if problem is not None:
            verdicts[index] = Verdict("rejected", problem)
        else:
            candidates.append((index, report))
    candidates.sort(key=lambda pair: pair[1].id)

    now = utcnow()
    if len(candidates) == 1 and dialect_name(session) == "postgresql":
        first = _first_write_of_one(session, account_id, device_id, candidates[0][1], now)
    else:
        inserted = _insert_new_runs(session, account_id, device_id, [r for _, r in candidates], now)
        # Runs this transaction inserted: nobody else can have events for them (a concurrent report
        # of one waits on our uncommitted row), so their traces go in by the fastest path.
        _insert_trace_events(session, [r for _, r in candidates if r.id in inserted], already={}, fresh=True)
        first = _FirstWrite(inserted)
    inserted, applied, recorded, counted, logged = first
    changed: list[str] = []
    first_of: set[str] = set()
    # Each write returns the run's whole row: the last one of a run is the row as this batch leaves it.
    rows = dict(inserted)
    for index, report in candidates:
        if report.id in inserted and report.id not in first_of:
            first_of.add(report.id)
            verdicts[index] = Verdict("stored")
            changed.append(report.id)
            continue
        found = applied.get(report.id)
        if found is None:
            found = _apply_to_existing(session, account_id, device_id, report, now)
        # Not stored after its insert found it stored: deleted in between (retention, say).
        verdict, written = found or (_deleted(report.id), None)
        verdicts[index] = verdict
        if written is not None:
            rows[report.id] = written.row
            changed.append(report.id)
    results = [IngestResult(r.id, verdicts[i].result, verdicts[i].reason) for i, r in enumerate(reports)]
    # The engine's execution log travels with a final report: kept when that report is.
    store_logs(
        session,
        [
            r
            for i, r in enumerate(reports)
            if r.log is not None and verdicts[i].result == "stored" and r.id not in logged
        ],
    )
    return Ingested(results, list(dict.fromkeys(changed)), rows, recorded, counted)


class _FirstWrite(NamedTuple):
    """What was written of a batch before its runs are judged one by one: the rows inserted, by id; the
    verdicts (with what was written) of reports already applied; the runs whose run.updated event,
    rollup count and engine log are written (fresh_run.py, stored_run.store_recorded_pg)."""

    inserted: dict[str, Row[Any]]
    applied: Mapping[str, tuple[Verdict, Stored | None]] = MappingProxyType({})
    recorded: frozenset[str] = frozenset()
    counted: frozenset[str] = frozenset()
    logged: frozenset[str] = frozenset()


def _first_write_of_one(
    session: Session, account_id: str, device_id: str, report: RunReportIn, now: datetime
) -> _FirstWrite:
    """A batch of one run on PostgreSQL (a phone's report as it goes, or at its end). A run the server
    made is stored (but for retention): judged and written at once, with no insert tried first. A
    phone's own run is new the first time: one statement (fresh_run.py); only when it is stored
    already is the report judged."""
    if report.trigger != "device":
        # Its run.updated event is written with it (one statement, stored_run.py): record_changes skips it.
        applied = _apply_to_existing(session, account_id, device_id, report, now, record=True)
        if applied is not None:
            stored = applied[1]
            if stored is None:
                return _FirstWrite({}, {report.id: applied})
            this = frozenset((report.id,))
            return _FirstWrite(
                {},
                {report.id: applied},
                this,
                this if stored.counted else frozenset(),
                this if stored.logged else frozenset(),
            )
    fresh = store_fresh_run(session, report, new_run_values(account_id, device_id, report, now), now)
    if fresh is None:
        return _FirstWrite({})
    insert_input_values(session, account_id, [(report.id, report.inputs)])
    written = frozenset((report.id,))
    return _FirstWrite(
        {report.id: fresh.row},
        {},
        written,
        written if fresh.counted else frozenset(),
        written if fresh.logged else frozenset(),
    )


def precheck(report: RunReportIn, device_id: str, versions: Mapping[str, str]) -> str | None:
    """Why the report is rejected before its run is looked at (`versions`: workflow id by version id of
    the account's versions it may name), or None."""
    if report.device_id is not None and report.device_id != device_id:
        return (
            f"run {report.id} names device {report.device_id}, but this token belongs to device {device_id}; "
            "a device reports only its own runs"
        )
    workflow_id = versions.get(report.workflow_version_id)
    if workflow_id is None:
        return (
            f"workflow version {report.workflow_version_id} does not exist in this account; "
            "report runs of versions the server handed out"
        )
    if workflow_id != report.workflow_id:
        return (
            f"workflow version {report.workflow_version_id} belongs to workflow {workflow_id}, "
            f"not {report.workflow_id}"
        )
    return None


# Workflow id by (account id, version id) of the versions reports named, in this process. A version
# never changes its workflow or account and is never deleted while its account lives, so what was read
# once stays true: a phone's reports of one run name one version, and only the first costs a query.
_VERSIONS_SEEN: dict[tuple[str, str], str] = {}
_VERSIONS_SEEN_MAX = 10_000


def version_seen(account_id: str, version_id: str) -> str | None:
    """The workflow of the account's version `version_id`, when this process has read it (no query)."""
    return _VERSIONS_SEEN.get((account_id, version_id))


def _known_versions(session: Session, account_id: str, version_ids: set[str]) -> dict[str, str]:
    """Workflow id by version id, for the versions of `version_ids` that this account owns."""
    from server.workflows.models import WorkflowVersion

    known: dict[str, str] = {}
    for version_id in version_ids:
        workflow_id = _VERSIONS_SEEN.get((account_id, version_id))  # another thread may clear it meanwhile
        if workflow_id is not None:
            known[version_id] = workflow_id
    unseen = version_ids - known.keys()
    if not unseen:
        return known
    rows = session.execute(
        select(WorkflowVersion.id, WorkflowVersion.workflow_id).where(
            WorkflowVersion.id.in_(unseen), WorkflowVersion.account_id == account_id
        )
    )
    if len(_VERSIONS_SEEN) > _VERSIONS_SEEN_MAX:
        _VERSIONS_SEEN.clear()
    for version_id, workflow_id in rows:
        known[version_id] = _VERSIONS_SEEN[(account_id, version_id)] = workflow_id
    return known


def _created_at(report: RunReportIn, now: datetime) -> datetime:
    # A run made on the device while offline was created when it started, not when it arrived.
    if report.started_at is not None and report.started_at < now:
        return report.started_at
    return now


def row_values(report: RunReportIn) -> dict[str, Any]:
    """The columns a report sets, on insert and on a newer report alike."""
    # A device's `paused` is its echo of the server's pause: the server alone moves a run into it.
    status = RunStatus.RUNNING if report.status is RunStatus.PAUSED else report.status
    return {
        "status": status.value,
        "status_rank": status.rank,
        "started_at": report.started_at,
        "ended_at": report.ended_at,
        "duration_ms": report.duration_ms,
        "error_message": report.error_message,
        "n_steps": report.n_steps,
        "n_failed": report.n_failed,
        "n_retries": report.n_retries,
        "trace_len": len(report.trace),
    }


def new_run_values(account_id: str, device_id: str, report: RunReportIn, now: datetime) -> dict[str, Any]:
    """The columns of a run a report is the first news of (the others stay null)."""
    return {
        "id": report.id,
        "account_id": account_id,
        "workflow_id": report.workflow_id,
        "workflow_version_id": report.workflow_version_id,
        "device_id": device_id,
        "trigger": report.trigger,
        "inputs": report.inputs,
        "created_at": _created_at(report, now),
        "updated_at": now,
        "claimed_at": None,
        "cancel_requested_at": None,
        "attempt": 1,
        "has_frames": False,  # its frames come after it is stored (server/runs/video.py frame_stored)
        **row_values(report),
    }


def _insert_new_runs(
    session: Session, account_id: str, device_id: str, reports: Sequence[RunReportIn], now: datetime
) -> dict[str, Row[Any]]:
    """Insert every run not stored yet in one statement; the rows this transaction inserted, by id."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        if report.id not in rows:
            rows[report.id] = new_run_values(account_id, device_id, report, now)
    if not rows:
        return {}
    inserted = insert_runs_if_new(session, list(rows.values()))
    insert_input_values(
        session, account_id, [(run_id, rows[run_id]["inputs"]) for run_id in sorted(inserted)]
    )
    return inserted


def _insert_trace_events(
    session: Session, reports: Sequence[RunReportIn], already: Mapping[str, int], *, fresh: bool = False
) -> None:
    """Insert the events each report adds; a stored `(run_id, seq)` is never overwritten."""
    seen: set[str] = set()
    rows: list[tuple[str, int, str]] = []
    for report in reports:
        if report.id in seen:
            continue
        seen.add(report.id)
        skip_below = already.get(report.id, -1)
        rows.extend(
            (report.id, event.seq, event.stored_json()) for event in report.trace if event.seq > skip_below
        )
    if rows:
        insert_trace_rows(session, rows, fresh=fresh)


def _deleted(run_id: str) -> Verdict:
    return Verdict("rejected", f"run {run_id} was deleted while this report was applied; send it again")


def _apply_to_existing(
    session: Session,
    account_id: str,
    device_id: str,
    report: RunReportIn,
    now: datetime,
    *,
    record: bool = False,
) -> tuple[Verdict, Stored | None] | None:
    """Judge a report about a stored run and, when newer, write it with a conditional UPDATE: the verdict,
    and what was written (the run's row after the write; None when nothing was written). None when the
    run is not stored.

    `record` (PostgreSQL only): the write also writes the run's run.updated event, the report's engine
    log and, when it ends the run, its rollup count (`store_recorded_pg`)."""
    seqs = [event.seq for event in report.trace]
    log = log_json(report.log) if record and report.log is not None else None
    for _ in range(MAX_ATTEMPTS):
        found = read_stored(session, report.id, seqs)
        if found is None:
            return None
        stored, stored_events = found
        if stored.account_id != account_id:
            return Verdict(
                "rejected", f"run {report.id} belongs to another device; a device reports only its own runs"
            ), None
        verdict = judge(stored, report, device_id, stored_events)
        if verdict.result != "stored":
            return verdict, None
        values = row_values(report)
        if stored.status is RunStatus.PAUSED and not report.status.terminal:
            # The server owns `paused` (server/runs/pausing.py): the device's reports add the
            # step that was in flight, and only a resume moves the run back to running.
            values["status"] = RunStatus.PAUSED.value
        # What the report leaves out keeps what the stored row knows (a claim set startedAt).
        params = {
            **{f"p_{key}": value for key, value in values.items()},
            "p_run_id": report.id,
            "p_old_status": stored.status.value,
            "p_old_len": stored.trace_len,
            "p_rank": report.status.rank,
            "p_device_id": device_id,
            "p_now": now,
        }
        stored_max_seq = max(stored_events) if stored_events else -1
        added = [(event.seq, event.stored_json()) for event in report.trace if event.seq > stored_max_seq]
        if record:
            written = store_recorded_pg(session, params, added, log)
        else:
            row = store_newer(session, params, report.id, added)
            written = None if row is None else Stored(row)
        if written is not None:
            return verdict, written
        # Another writer moved the run between our read and our write: read it again.
    return Verdict(
        "rejected", f"run {report.id} kept changing while this report was applied; send it again"
    ), None
