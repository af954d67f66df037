"""The step gate: what a bridge asks before every step of a run it is running.

`POST /api/v1/devices/me/runs/{id}/gate` answers whether a cancel of the run was accepted,
whether the run is paused (the phone holds before its next step and asks again), and which
version of the account's effective denylist is in force. It is one indexed query
(the run by primary key, joined with the account's denylist entries by their
`(account_id, pattern)` index), so that it can be asked before every step.

A bridge that names the step it is about to start (`{"seq", "nodeId"}`) also makes it the run's
step in flight: `announce_step` writes a `run.step` event that the run's page shows with its
elapsed time. The answer's `live` says someone asked to watch the run live (`runs.live_until`):
the bridge then sends frames between steps too.

Every phone asks the gate before every step, most often carrying the run's progress, so its usual
case has a path of its own (`fast_gate`, a few statements of SQLAlchemy Core, no ORM): one SELECT
reads the device by its token (not revoked), the run (this device's), the account's denylist
patterns and the stored trace events the carried report repeats; the report is judged by
runs.report's own `judge`; a newer one is one conditional `UPDATE ... RETURNING` (the `run.updated`
payload comes back with it) and the new trace events; `run.updated` and `run.step` are one INSERT.
Anything else — no such run or device, a revoked token, a report the fast path does not take (a
final one, another version, a run that moved meanwhile) — goes the general way (`gate`,
`announce_step`, runs.report's `ingest_reports`), which answers every case as it always did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.trace import RunStatus
from server.db import after_commit, utcnow
from server.denylist.models import DenylistEntry
from server.denylist.service import denylist_version
from server.devices.models import Device
from server.errors import NotFound
from server.metrics import count_reported
from server.runs.events import RUN_STEP
from server.runs.json_sql import json_array_agg, json_pair
from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.pg_notify import CHANNEL, notify_on_commit
from server.runs.report import Verdict, judge, row_values
from server.runs.run_event_rows import insert_run_events
from server.runs.schemas import RunReportIn
from server.runs.service import summary_json
from server.runs.sql import once_per_transaction
from server.runs.stored_run import StoredRun, store_newer, store_progress_pg


@dataclass(frozen=True, slots=True)
class GateAnswer:
    status: str
    cancel_requested: bool
    denylist_version: str
    run_id: str = ""
    account_id: str = ""
    live: bool = False

    @property
    def paused(self) -> bool:
        """Hold before the next step: the run is paused (and no cancel was asked)."""
        return self.status == "paused" and not self.cancel_requested

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "cancelRequested": self.cancel_requested,
            "paused": self.paused,
            "denylistVersion": self.denylist_version,
            "live": self.live,
            "acceptsReport": True,
        }


def gate(session: Session, device: Device, run_id: str, global_denylist: Denylist) -> GateAnswer:
    """The gate's answer for one of `device`'s runs; 404 for a run that is not this device's."""
    rows = session.execute(
        select(
            Run.status, Run.cancel_requested_at, DenylistEntry.pattern, Run.account_id, Run.id, Run.live_until
        )
        .select_from(Run)
        .outerjoin(DenylistEntry, DenylistEntry.account_id == Run.account_id)
        .where(Run.id == run_id.lower(), Run.device_id == device.id)
    ).all()
    if not rows:
        raise NotFound(
            f"this device has no run {run_id}: ask the gate only for runs this device claimed or reported"
        )
    status, cancel_requested_at, _, account_id, stored_id, live_until = rows[0]
    patterns = [*global_denylist.entries, *(row[2] for row in rows if row[2] is not None)]
    live = live_until is not None and live_until > utcnow()
    return GateAnswer(
        status, cancel_requested_at is not None, denylist_version(patterns), stored_id, account_id, live
    )


def announce_step(
    session: Session, answer: GateAnswer, seq: int, node_id: str, notify: Callable[[], object] | None
) -> None:
    """Write the `run.step` event (the step in flight) of a gate that was told the step about to start."""
    if answer.cancel_requested or answer.status not in ("running", "waiting_for_approval"):
        return  # the step will not start, or the server does not see the run moving
    payload = {"id": answer.run_id, "seq": seq, "nodeId": node_id, "startedAt": utcnow().isoformat()}
    session.execute(
        insert(RunEvent).values(
            account_id=answer.account_id,
            run_id=answer.run_id,
            payload=payload,
            event=RUN_STEP,
            created_at=utcnow(),
        )
    )
    notify_on_commit(session)
    if notify is not None:
        after_commit(session, notify)


# --- the usual case, in few statements -------------------------------------------------------------


_runs: Table = Run.__table__  # type: ignore[assignment]
_devices: Table = Device.__table__  # type: ignore[assignment]
_entries: Table = DenylistEntry.__table__  # type: ignore[assignment]
_trace: Table = TraceEventRow.__table__  # type: ignore[assignment]

# The device by its token (unrevoked), its run, the account's denylist, and the stored trace events
# between `first` and `last` (the seqs a carried report repeats): one statement, built once.
_GATE_STATE = (
    select(
        _devices.c.id.label("device_id"),
        _devices.c.account_id,
        _runs.c.id.label("run_id"),
        _runs.c.status,
        _runs.c.trace_len,
        _runs.c.cancel_requested_at,
        _runs.c.live_until,
        _runs.c.workflow_id,
        _runs.c.workflow_version_id,
        select(json_array_agg(_entries.c.pattern))
        .where(_entries.c.account_id == _runs.c.account_id)
        .scalar_subquery()
        .label("patterns"),
        select(json_array_agg(json_pair(_trace.c.seq, _trace.c.event)))
        .where(
            _trace.c.run_id == _runs.c.id,
            _trace.c.seq.between(bindparam("first"), bindparam("last")),
        )
        .scalar_subquery()
        .label("events"),
    )
    .select_from(
        _devices.join(
            _runs, (_runs.c.device_id == _devices.c.id) & (_runs.c.account_id == _devices.c.account_id)
        )
    )
    .where(
        _devices.c.token_hash == bindparam("token_hash"),
        _devices.c.revoked_at.is_(None),
        _runs.c.id == bindparam("run_id"),
    )
)


# PostgreSQL: `_GATE_STATE` and, when the gate names the step about to start and carries no report, the
# step's `run.step` event with its NOTIFY (`insert_run_events` writes the same), in one statement:
# the event is written only when the run is this device's and moving (running or waiting for an
# approval) with no cancel asked, the condition `fast_gate` announces a step under. Sent to the driver
# as is (psycopg prepares it after a few uses): SQLAlchemy's work per statement cost more than
# PostgreSQL's part, and the gate is asked before every step.
_STEP_STATUSES = ("running", "waiting_for_approval")
_PG_GATE_STATE = f"""
WITH state AS (
    SELECT d.id AS device_id, d.account_id, r.id AS run_id, r.status, r.trace_len, r.cancel_requested_at,
        r.live_until, r.workflow_id, r.workflow_version_id,
        (SELECT json_agg(e.pattern) FROM {_entries.name} e WHERE e.account_id = r.account_id) AS patterns,
        (SELECT json_agg(json_build_array(t.seq, t.event)) FROM {_trace.name} t
            WHERE t.run_id = r.id AND t.seq BETWEEN %(first)s AND %(last)s) AS events
    FROM {_devices.name} d JOIN {_runs.name} r ON r.device_id = d.id AND r.account_id = d.account_id
    WHERE d.token_hash = %(token_hash)s AND d.revoked_at IS NULL AND r.id = %(run_id)s
), step AS (
    INSERT INTO {RunEvent.__tablename__} (account_id, run_id, payload, event, created_at)
    SELECT state.account_id, state.run_id, %(step)s::json, '{RUN_STEP}', %(now)s
    FROM state, LATERAL (
        SELECT pg_notify('{CHANNEL}', '')
        WHERE %(step)s::json IS NOT NULL AND state.cancel_requested_at IS NULL
            AND state.status IN ({", ".join(f"'{status}'" for status in _STEP_STATUSES)})
    ) AS notified
)
SELECT device_id, account_id, run_id, status, trace_len, cancel_requested_at, live_until, workflow_id,
    workflow_version_id, patterns, events
FROM state
"""


@dataclass(frozen=True, slots=True)
class GateState:
    """What the fast path read of the device, its run and the account's denylist; `step_announced`: the
    step's `run.step` event was written with the read (PostgreSQL, no report carried)."""

    device_id: str
    account_id: str
    run_id: str
    status: str
    trace_len: int
    cancel_requested: bool
    live_until: datetime | None
    workflow_id: str
    workflow_version_id: str
    patterns: list[str]
    stored_events: dict[int, dict[str, Any]]
    step_announced: bool = False


def gate_state(
    session: Session,
    token_hash: str,
    run_id: str,
    report: RunReportIn | None,
    step: tuple[int, str] | None = None,
) -> GateState | None:
    """The device of `token_hash` (unrevoked), its run `run_id` and the account's denylist patterns, with
    the stored events at the seqs `report` carries; None when there is no such device or run.

    On PostgreSQL, a `step` `(seq, node id)` of a gate that carries no report is announced (its
    `run.step` event written) by the same statement when the run may start it; the caller registers
    the after-commit wake-up (`fast_gate` does)."""
    run_id = run_id.lower()
    first, last = (
        (report.trace[0].seq, report.trace[-1].seq) if report is not None and report.trace else (1, 0)
    )
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        found = connection.execute(
            _GATE_STATE, {"token_hash": token_hash, "run_id": run_id, "first": first, "last": last}
        ).first()
        if found is None:
            return None
        row: Any = found
    else:
        now = utcnow()
        payload = None
        if step is not None and report is None:
            seq, node_id = step
            payload = {"id": run_id, "seq": seq, "nodeId": node_id, "startedAt": now.isoformat()}
        driver = connection.connection.driver_connection
        row = driver.execute(  # type: ignore[union-attr]
            _PG_GATE_STATE,
            {
                "token_hash": token_hash,
                "run_id": run_id,
                "first": first,
                "last": last,
                "step": None if payload is None else json.dumps(payload, separators=(",", ":")),
                "now": now,
            },
        ).fetchone()
        if row is None:
            return None
    (device_id, account_id, stored_id, status, trace_len, cancel_requested_at, live_until) = row[:7]
    workflow_id, workflow_version_id, patterns, events = row[7:]
    announced = (
        connection.dialect.name == "postgresql"
        and step is not None
        and report is None
        and cancel_requested_at is None
        and status in _STEP_STATUSES
    )
    if announced:
        once_per_transaction(session, "notify")  # the statement's NOTIFY: later writes need none
    return GateState(
        device_id,
        account_id,
        stored_id,
        status,
        trace_len,
        cancel_requested_at is not None,
        live_until,
        workflow_id,
        workflow_version_id,
        list(patterns or ()),
        {int(seq): event for seq, event in (events or ())},
        announced,
    )


@dataclass(frozen=True, slots=True)
class FastGateResult:
    answer: GateAnswer
    carried: Verdict | None  # what became of the report the gate carried (None: it carried none)


def fast_gate(
    session: Session,
    state: GateState,
    global_denylist: Denylist,
    report: RunReportIn | None,
    step: tuple[int, str] | None,
    notify: Callable[[], object] | None,
) -> FastGateResult | None:
    """The gate's answer (and the carried report stored by runs.report's rules) for the usual case; None,
    with nothing written, when the report needs the general path (`ingest_reports`)."""
    now = utcnow()
    status, cancel_requested = state.status, state.cancel_requested
    verdict: Verdict | None = None
    changed: Any = None
    written = False  # the write of the progress wrote run.updated and the step's run.step too
    if report is not None:
        outcome = _apply_progress(session, state, report, step, now)
        if outcome is None:
            return None
        verdict, changed, written = outcome
        if changed is not None:
            status, cancel_requested = changed.status, changed.cancel_requested_at is not None
    patterns = [*global_denylist.entries, *state.patterns]
    answer = GateAnswer(
        status,
        cancel_requested,
        denylist_version(patterns),
        state.run_id,
        state.account_id,
        state.live_until is not None and state.live_until > now,
    )
    events: list[tuple[dict[str, Any], str | None]] = []
    if changed is not None and not written:
        events.append((summary_json(changed), None))
    if (
        step is not None
        and not state.step_announced
        and not written
        and not answer.cancel_requested
        and answer.status in _STEP_STATUSES
    ):
        seq, node_id = step
        events.append(
            ({"id": state.run_id, "seq": seq, "nodeId": node_id, "startedAt": now.isoformat()}, RUN_STEP)
        )
    if events:
        insert_run_events(session, state.account_id, state.run_id, events, now)
    if (events or state.step_announced or written) and notify is not None:
        after_commit(session, notify)
    if verdict is not None:
        result = verdict.result
        after_commit(session, lambda: count_reported([result]))
    return FastGateResult(answer, verdict)


def _apply_progress(
    session: Session, state: GateState, report: RunReportIn, step: tuple[int, str] | None, now: datetime
) -> tuple[Verdict, Any, bool] | None:
    """Judge a non-final report of this device's run (runs.report's `judge`) and, when it is newer, store
    it: `(verdict, the run's row after the update or None, whether run.updated and the step's run.step
    were written with it)`; None for what only the general path answers (nothing written then).

    On PostgreSQL the write is one statement with the run's events (`store_progress_pg`); the row it
    gives back has the run's status and cancel_requested_at only."""
    if (
        report.status.terminal
        or report.log is not None
        or report.workflow_version_id != state.workflow_version_id
        or report.workflow_id != state.workflow_id
        or (report.device_id is not None and report.device_id != state.device_id)
    ):
        return None
    stored = StoredRun(
        RunStatus(state.status), state.trace_len, state.account_id, state.device_id, state.workflow_version_id
    )
    verdict = judge(stored, report, state.device_id, state.stored_events)
    if verdict.result != "stored":
        return verdict, None, False
    values = row_values(report)
    if stored.status is RunStatus.PAUSED:
        values["status"] = RunStatus.PAUSED.value  # the server alone moves a run out of `paused`
    params = {
        **{f"p_{key}": value for key, value in values.items()},
        "p_run_id": state.run_id,
        "p_old_status": stored.status.value,
        "p_old_len": stored.trace_len,
        "p_rank": report.status.rank,
        "p_device_id": state.device_id,
        "p_now": now,
    }
    stored_max_seq = max(state.stored_events) if state.stored_events else -1
    added = [(e.seq, e.stored_json()) for e in report.trace if e.seq > stored_max_seq]
    if session.get_bind().dialect.name == "postgresql":
        payload = None
        if step is not None:
            seq, node_id = step
            payload = {"id": state.run_id, "seq": seq, "nodeId": node_id, "startedAt": now.isoformat()}
        after = store_progress_pg(
            session, params, added, None if payload is None else json.dumps(payload, separators=(",", ":"))
        )
        if after is None:
            return None  # another writer moved the run since it was read: the general path reads it again
        return verdict, _Moved(*after), True
    changed = store_newer(session, params, state.run_id, added)
    if changed is None:
        return None  # as above
    return verdict, changed, False


class _Moved(NamedTuple):
    """What the gate's answer needs of a run after its progress was stored."""

    status: str
    cancel_requested_at: datetime | None
