"""Runs: reading, listing, triggering, claiming and cancelling, and recording `run.updated` events.

Nothing here commits: the request's session owns the transaction. Every change to a run
writes a `RunEvent` row in the same transaction and asks to be told after the commit, so
that `run.updated` is published exactly for committed changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, Table, bindparam, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.run_inputs import InputsSchemaError, input_problems, with_defaults
from interpreter.trace import RunStatus
from interpreter.validation import denied_packages
from server.accounts.models import Account
from server.approvals.service import cancel_pending as cancel_pending_approvals
from server.db import UtcDateTime, after_commit, new_id, utcnow
from server.denylist.service import (
    DeniedPackages,
    EffectiveDenylist,
    check_version_allowed,
    effective_entries,
)
from server.devices.models import Device
from server.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from server.runs.claim_at_once import claim_at_once
from server.runs.lifecycle import runs_ended
from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.pg_notify import CHANNEL, notice_of
from server.runs.run_event_rows import insert_run_events
from server.runs.sql import dialect_name, insert_input_values, once_per_transaction, utc_ms
from server.runs.waiting import why_waiting
from server.workflows.models import Workflow, WorkflowVersion

MAX_CLAIM_ATTEMPTS = 20


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else utc_ms(moment)


def summary_json(run: Run | Row[Any]) -> dict[str, Any]:
    """A run (a model, or a row of the runs table) without its trace, as JSON: the list item and
    the `run.updated` payload."""
    return {
        "id": run.id,
        "workflowId": run.workflow_id,
        "workflowVersionId": run.workflow_version_id,
        "deviceId": run.device_id,
        "status": run.status,
        "trigger": run.trigger,
        "triggeredBy": run.triggered_by,
        "inputs": run.inputs,
        "startedAt": _time(run.started_at),
        "endedAt": _time(run.ended_at),
        "durationMs": run.duration_ms,
        "errorMessage": run.error_message,
        "nSteps": run.n_steps,
        "nFailed": run.n_failed,
        "nRetries": run.n_retries,
        "traceLen": run.trace_len,
        "cancelRequested": run.cancel_requested_at is not None,
        "retryOf": run.retry_of,
        "attempt": run.attempt,
        "notBefore": _time(run.not_before),
        "batchId": run.batch_id,
        "deviceTag": run.device_tag,
        "createdAt": utc_ms(run.created_at),
        "updatedAt": utc_ms(run.updated_at),
    }


# PostgreSQL: `run.updated` rows of many runs (`[[run id, payload], ...]`) and the NOTIFY for the other
# processes' hubs (delivered at commit), in one statement.
_PG_RUN_UPDATES = text(
    "INSERT INTO run_events (account_id, run_id, payload, created_at) "
    "SELECT :account_id, u->>0, u->1, :created_at "
    f"FROM (SELECT pg_notify('{CHANNEL}', :notice)) AS notified, "
    "json_array_elements(CAST(:updates AS json)) AS u"
).bindparams(bindparam("created_at", type_=UtcDateTime()))


def record_changes(
    session: Session,
    account_id: str,
    run_ids: Sequence[str],
    notify: Callable[[], object] | None,
    known: Mapping[str, Row[Any]] | None = None,
    *,
    written: Collection[str] = (),
) -> dict[str, Row[Any]]:
    """Write one `run.updated` event per changed run; call `notify` once the transaction commits.

    `known`: rows of some of these runs as they are now (runs.report's inserts return theirs), not
    read again. `written`: runs whose event this transaction has written already (fresh_run.py).
    Returns the runs' rows as they are now (by id), for callers that need them after."""
    if not run_ids:
        return {}
    by_id = {run_id: known[run_id] for run_id in run_ids if known and run_id in known}
    unread = [run_id for run_id in run_ids if run_id not in by_id]
    if unread:
        session.flush()
        # Plain rows, not models: this runs for every accepted report, and the ORM's bookkeeping
        # of 50 objects a batch costs more than the query.
        runs = session.execute(select(Run.__table__).where(Run.__table__.c.id.in_(unread))).all()
        by_id.update((run.id, run) for run in runs)
    now = utcnow()
    updates = [
        (run_id, summary_json(by_id[run_id]))
        for run_id in run_ids
        if run_id in by_id and run_id not in written
    ]
    if not updates:
        if notify is not None:
            after_commit(session, notify)
        return by_id
    if dialect_name(session) == "postgresql":
        # The rows and the NOTIFY that wakes the other processes' hubs at commit, in one statement.
        document = json.dumps(updates, separators=(",", ":"))
        notice = notice_of(payload for _, payload in updates)
        session.execute(
            _PG_RUN_UPDATES,
            {"account_id": account_id, "created_at": now, "updates": document, "notice": notice},
        )
        once_per_transaction(session, "notify")
    else:
        rows = [
            {"account_id": account_id, "run_id": run_id, "payload": payload, "created_at": now}
            for run_id, payload in updates
        ]
        session.execute(insert(RunEvent.__table__), rows)  # type: ignore[arg-type]
    if notify is not None:
        after_commit(session, notify)
    return by_id


def get_run(session: Session, account_id: str, run_id: str) -> Run:
    """The run `run_id` of this account; 404 when there is none (another account's run included)."""
    run = session.scalars(select(Run).where(Run.id == run_id.lower(), Run.account_id == account_id)).first()
    if run is None:
        raise NotFound(f"no run {run_id} in this account; list runs with GET /api/v1/runs")
    return run


def trace_of(session: Session, run_id: str) -> list[dict[str, Any]]:
    """The stored trace of a run, in seq order."""
    return list(
        session.scalars(
            select(TraceEventRow.event).where(TraceEventRow.run_id == run_id).order_by(TraceEventRow.seq)
        )
    )


def retried_by(session: Session, run_id: str) -> list[str]:
    """Ids of the runs that run `run_id` again (its retries), oldest first."""
    return list(
        session.scalars(select(Run.id).where(Run.retry_of == run_id).order_by(Run.created_at, Run.id))
    )


def run_json(session: Session, run: Run) -> dict[str, Any]:
    """A run with its trace, the ids of its retries and, while it is queued, why it waits, as JSON."""
    waiting = why_waiting(session, run)
    return {
        **summary_json(run),
        "retriedBy": retried_by(session, run.id),
        "waiting": None if waiting is None else waiting.to_json(),
        "trace": trace_of(session, run.id),
    }


def _published_version(
    session: Session, account_id: str, workflow_id: str
) -> tuple[Workflow, WorkflowVersion]:
    workflow = session.scalars(
        select(Workflow).where(Workflow.id == workflow_id, Workflow.account_id == account_id)
    ).first()
    if workflow is None:
        raise NotFound(
            f"no workflow {workflow_id} in this account; list workflows with GET /api/v1/workflows"
        )
    if workflow.published_version_id is None:
        raise Conflict(
            f"workflow {workflow_id} has no published version, so there is nothing to run; "
            f"publish one with POST /api/v1/workflows/{workflow_id}/publish"
        )
    version = session.get(WorkflowVersion, workflow.published_version_id)
    if version is None or version.workflow_id != workflow.id:
        raise Conflict(
            f"the published version of workflow {workflow_id} no longer exists; publish another version"
        )
    return workflow, version


HOW_TO_FIT = "give inputs that match the workflow's `inputs` schema"


def _check_inputs(definition: dict[str, Any], inputs: dict[str, Any], pointer: str = "/inputs") -> None:
    schema = definition.get("inputs")
    if not isinstance(schema, dict):
        return
    try:
        problems = input_problems(schema, with_defaults(schema, inputs))
    except InputsSchemaError as exc:
        raise ValidationFailed(
            [FieldProblem(pointer, str(exc), "publish a version of the workflow whose inputs schema works")]
        ) from None
    if problems:
        raise ValidationFailed(
            [
                FieldProblem(
                    pointer + problem.pointer,
                    problem.message,
                    "give inputs that match the workflow's `inputs` schema",
                )
                for problem in problems
            ]
        )


def describe_version(workflow: Workflow, version: WorkflowVersion) -> str:
    """How refusals name a stored version: "the published version 3 of workflow 'Shop' (id)"."""
    return f"the published version {version.number} of workflow '{workflow.name}' ({workflow.id})"


def check_denylist(
    session: Session, account_id: str, workflow: Workflow, version: WorkflowVersion, global_denylist: Denylist
) -> None:
    """409 `DeniedPackages` when the version names a package the account's denylist denies now
    (an entry added after the version was saved)."""
    effective = effective_entries(session, account_id, global_denylist)
    check_version_allowed(version.definition, effective, what=describe_version(workflow, version))


def trigger_run(
    session: Session,
    account: Account,
    workflow_id: str,
    device_id: str | None,
    inputs: dict[str, Any],
    *,
    global_denylist: Denylist,
    trigger: str = "api",
    triggered_by: str | None = None,
    notify: Callable[[], object] | None = None,
    inputs_pointer: str = "/inputs",
    device_tag: str | None = None,
    batch_id: str | None = None,
    frames: str | None = None,
) -> Run:
    """A new `queued` run of the workflow's published version on one of the account's devices, or
    (`device_id` None, `device_tag` set) for the first free phone with that tag to claim.

    Refused (409) when the version names a package denied since it was saved: `global_denylist`
    plus the account's entries are checked now. `triggered_by` names who or what asked (a
    person's email, a schedule, a hook); a refusal of the inputs points into the body at
    `inputs_pointer` (the hooks' body is the inputs: "")."""
    workflow, version = _published_version(session, account.id, workflow_id)
    if device_id is not None:
        device = session.scalars(
            select(Device).where(Device.id == device_id, Device.account_id == account.id)
        ).first()
        if device is None:
            raise NotFound(f"no device {device_id} in this account; list devices with GET /api/v1/devices")
        if device.revoked_at is not None:
            raise Conflict(f"device {device_id} was revoked and takes no runs; pair a device again")
    elif device_tag is None or not _tag_has_devices(session, account.id, device_tag):
        raise Conflict(
            f"no device of this account carries the tag {device_tag!r}, so no phone would take the run; "
            "tag one with PUT /api/v1/devices/{id}/tags"
        )
    _check_inputs(version.definition, inputs, inputs_pointer)
    check_denylist(session, account.id, workflow, version, global_denylist)
    now = utcnow()
    run = Run(
        id=new_id(),
        account_id=account.id,
        workflow_id=workflow_id,
        workflow_version_id=version.id,
        device_id=device_id,
        device_tag=device_tag if device_id is None else None,
        batch_id=batch_id,
        status=RunStatus.QUEUED.value,
        status_rank=RunStatus.QUEUED.rank,
        trigger=trigger,
        triggered_by=triggered_by,
        inputs=inputs,
        trace_len=0,
        frames=frames,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    insert_input_values(session, account.id, [(run.id, inputs)])
    record_changes(session, account.id, [run.id], notify)
    return run


def _tag_has_devices(session: Session, account_id: str, tag: str) -> bool:
    devices = session.scalars(
        select(Device.tags).where(Device.account_id == account_id, Device.revoked_at.is_(None))
    )
    return any(tag in (tags or []) for tags in devices)


class ClaimingDevice(Protocol):
    """What claiming needs of a device: a `Device`, or the few columns the claim reads (`DeviceRef`)."""

    @property
    def id(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def tags(self) -> list[str] | None: ...


_runs: Table = Run.__table__  # type: ignore[assignment]
_CLAIMABLE = or_(_runs.c.not_before.is_(None), _runs.c.not_before <= bindparam("now", type_=UtcDateTime()))
# The statements every claim runs, built once (SQLAlchemy then reuses their compiled form at once).
_OWN_QUEUED = (
    select(_runs.c.id, _runs.c.workflow_version_id)
    .where(_runs.c.device_id == bindparam("device_id"), _runs.c.status == RunStatus.QUEUED.value, _CLAIMABLE)
    .order_by(_runs.c.created_at, _runs.c.id)
    .limit(1)
)
# A claim reads it FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite renders no lock clause: its writers are
# serialised); a look whether there is one (the wake-up poll) locks nothing, or a claimer would skip
# the row it looked at until the look's transaction ended.
_TAGGED_QUEUED_LOOK = (
    select(_runs.c.id, _runs.c.workflow_version_id)
    .where(
        _runs.c.account_id == bindparam("account_id"),
        _runs.c.device_tag.in_(bindparam("tags", expanding=True)),
        _runs.c.status == RunStatus.QUEUED.value,
        _runs.c.device_id.is_(None),
        _CLAIMABLE,
    )
    .order_by(_runs.c.created_at, _runs.c.id)
    .limit(1)
)
_TAGGED_QUEUED = _TAGGED_QUEUED_LOOK.with_for_update(skip_locked=True)


def _next_queued_statement(tagged: Any) -> Any:
    """The device's own oldest queued run, else the oldest tagged one, in one statement: `WHERE id =
    COALESCE((own), (tagged))`. Each lookup keeps its own plan (an index scan, LIMIT 1); PostgreSQL
    evaluates the tagged one (and takes its row lock) only when the device has no run of its own.
    `device_id IS NULL` says whether the run is taken by tag."""
    own = _OWN_QUEUED.with_only_columns(_runs.c.id).scalar_subquery()
    by_tag = tagged.with_only_columns(_runs.c.id).scalar_subquery()
    found = _runs.alias("found")  # not `runs`: the lookups would correlate to it
    return select(found.c.id, found.c.workflow_version_id, found.c.device_id.is_(None).label("by_tag")).where(
        found.c.id == func.coalesce(own, by_tag)
    )


_NEXT_QUEUED, _NEXT_QUEUED_LOOK = (
    _next_queued_statement(_TAGGED_QUEUED),
    _next_queued_statement(_TAGGED_QUEUED_LOOK),
)


def _claim_update(by_tag: bool) -> Any:
    """`UPDATE runs SET running ... WHERE id AND status = 'queued' AND (this device's | no device)`."""
    return (
        update(_runs)
        .where(
            _runs.c.id == bindparam("run_id"),
            _runs.c.status == RunStatus.QUEUED.value,
            _runs.c.device_id.is_(None) if by_tag else _runs.c.device_id == bindparam("own_device_id"),
        )
        .values(
            status=RunStatus.RUNNING.value,
            status_rank=RunStatus.RUNNING.rank,
            claimed_at=bindparam("now", type_=UtcDateTime()),
            started_at=bindparam("now", type_=UtcDateTime()),
            updated_at=bindparam("now", type_=UtcDateTime()),
            lease_until=bindparam("lease_until", type_=UtcDateTime()),
            **({"device_id": bindparam("tag_device_id")} if by_tag else {}),
        )
        .returning(*_runs.c)
    )


_CLAIM_OWN, _CLAIM_TAGGED = _claim_update(False), _claim_update(True)
# Workflow versions never change once stored: the definitions claims hand out, kept per process.
_DEFINITIONS: dict[str, dict[str, Any]] = {}
_DEFINITIONS_KEPT = 256


def _next_queued(
    session: Session, device: ClaimingDevice, *, lock: bool = True
) -> tuple[str, str, bool] | None:
    """The next queued run this device may take: its own oldest, else the oldest that any free phone
    with one of its tags may take. `(run id, version id, taken by tag)`.

    On PostgreSQL a tag run is read `FOR UPDATE SKIP LOCKED`: phones claiming at once each lock a
    different run instead of queueing behind one row (the conditional UPDATE still decides)."""
    tags = list(device.tags or ())
    found = (
        session.connection()
        .execute(
            _NEXT_QUEUED if lock else _NEXT_QUEUED_LOOK,
            {"device_id": device.id, "account_id": device.account_id, "tags": tags, "now": utcnow()},
        )
        .first()
    )
    return None if found is None else (found[0], found[1], bool(found[2]))


def has_claimable_run(session: Session, device: ClaimingDevice) -> bool:
    """Whether a claim by `device` now would find a queued run (the bridge's wake-up poll)."""
    return _next_queued(session, device, lock=False) is not None


def claim_run(
    session: Session,
    device: ClaimingDevice,
    denylist: EffectiveDenylist,
    notify: Callable[[], object] | None = None,
    *,
    lease_s: float | None = None,
) -> tuple[Row[Any], dict[str, Any]] | None:
    """Hand the oldest queued run of `device` to this caller only, moving it to `running`; when it has
    none, the oldest queued run that any free phone with one of its tags may take (it becomes this
    device's run). The claimed run's row (as `summary_json` reads it) and its version's definition.

    The conditional UPDATE (`WHERE status = 'queued'`) decides between concurrent claimers in
    the database: exactly one sees its row change; the others look for the next queued run.
    A queued run whose version names a package that `denylist` (the account's effective list)
    now denies is not handed out: it ends `failed` with what to do, and the next one is looked at.
    """
    allowed = _allowed_versions(device.account_id, denylist)
    if allowed != [] and dialect_name(session) == "postgresql":
        # The look, the claim and its run.updated in one statement (claim_at_once.py).
        now = utcnow()
        lease_until = None if lease_s is None else now + timedelta(seconds=lease_s)
        at_once = claim_at_once(
            session, device.id, device.account_id, list(device.tags or ()), now, lease_until, allowed
        )
        if at_once == "none":
            return None
        if not isinstance(at_once, str):
            if notify is not None:
                after_commit(session, notify)
            return at_once, _definition(session, at_once.workflow_version_id)
        # "taken": another claimer was first, or the run's version is not known to be allowed.
    refused_versions: dict[str, str | None] = {}
    for _ in range(MAX_CLAIM_ATTEMPTS):
        candidate = _next_queued(session, device)
        if candidate is None:
            return None
        run_id, version_id, by_tag = candidate
        definition = _definition(session, version_id)
        if version_id not in refused_versions:
            refused_versions[version_id] = _denylist_refusal(session, version_id, definition, denylist)
        refusal = refused_versions[version_id]
        now = utcnow()
        if refusal is not None:
            _fail_refused(session, device, run_id, by_tag, refusal, notify)
            continue
        _allow(device.account_id, denylist, version_id)
        claimed = (
            session.connection()
            .execute(
                _CLAIM_TAGGED if by_tag else _CLAIM_OWN,
                {
                    "run_id": run_id,
                    "own_device_id": device.id,
                    "tag_device_id": device.id,
                    "now": now,
                    # the run's lease (server/runs/lease.py), when the claimer asked for one
                    "lease_until": None if lease_s is None else now + timedelta(seconds=lease_s),
                },
            )
            .first()
        )
        if claimed is None:
            continue  # another claimer took it: look for the next one
        insert_run_events(session, device.account_id, run_id, [(summary_json(claimed), None)], now)
        if notify is not None:
            after_commit(session, notify)
        return claimed, definition
    return None


# By account: the version of its effective denylist and the workflow versions found to name no package
# that list denies (a claim of one of their runs needs no look first: claim_at_once.py). Versions
# never change; another denylist has another version, and then nothing is known.
_ALLOWED: dict[str, tuple[str, frozenset[str]]] = {}
_ALLOWED_KEPT = 10_000


def _allowed_versions(account_id: str, denylist: EffectiveDenylist) -> list[str] | None:
    """The workflow versions a claim under `denylist` may hand out without a look first; None: any (the
    denylist is empty)."""
    if not denylist.denylist.entries:
        return None
    known = _ALLOWED.get(account_id)  # another thread may replace it meanwhile: a snapshot
    return sorted(known[1]) if known is not None and known[0] == denylist.version else []


def _allow(account_id: str, denylist: EffectiveDenylist, version_id: str) -> None:
    """Note that `version_id` names no package `denylist` denies (claims of its runs need no look)."""
    if not denylist.denylist.entries:
        return
    known = _ALLOWED.get(account_id)
    versions = known[1] if known is not None and known[0] == denylist.version else frozenset()
    if version_id in versions:
        return
    if len(_ALLOWED) >= _ALLOWED_KEPT:
        _ALLOWED.clear()
    _ALLOWED[account_id] = (denylist.version, versions | {version_id})


def _definition(session: Session, version_id: str) -> dict[str, Any]:
    """A workflow version's definition (kept in this process: versions are immutable)."""
    definition = _DEFINITIONS.get(version_id)
    if definition is None:
        definition = session.execute(
            select(WorkflowVersion.definition).where(WorkflowVersion.id == version_id)
        ).scalar_one()
        if len(_DEFINITIONS) >= _DEFINITIONS_KEPT:
            _DEFINITIONS.clear()
        _DEFINITIONS[version_id] = definition
    return definition


def _fail_refused(
    session: Session,
    device: ClaimingDevice,
    run_id: str,
    by_tag: bool,
    refusal: str,
    notify: Callable[[], object] | None,
) -> None:
    """End a queued run the denylist now refuses `failed`, with `refusal` as its message."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": RunStatus.FAILED.value,
        "status_rank": RunStatus.FAILED.rank,
        "ended_at": now,
        "error_message": refusal,
        "n_steps": 0,
        "n_failed": 0,
        "n_retries": 0,
    }
    if by_tag:
        values["device_id"] = device.id
    failed = session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.status == RunStatus.QUEUED.value,
            Run.device_id.is_(None) if by_tag else Run.device_id == device.id,
        )
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if failed.rowcount == 1:  # type: ignore[attr-defined]
        record_changes(session, device.account_id, [run_id], notify)
        # Ended as any run ends: counted in the analytics, its run.finished/run.failed webhooks enqueued.
        runs_ended(session, device.account_id, [run_id])


def _denylist_refusal(
    session: Session, version_id: str, definition: dict[str, Any], denylist: EffectiveDenylist
) -> str | None:
    """Why a run of this version may not start under `denylist` (the failed run's message), or None."""
    if next(denied_packages(definition, denylist.denylist), None) is None:
        return None  # nothing denied: no need to name the version
    version = session.get(WorkflowVersion, version_id)
    workflow = session.get(Workflow, version.workflow_id) if version is not None else None
    if version is None or workflow is None:
        return None
    try:
        check_version_allowed(
            version.definition,
            denylist,
            what=f"version {version.number} of workflow '{workflow.name}' ({workflow.id})",
            prefix="not started: ",
        )
    except DeniedPackages as refusal:
        return refusal.message
    return None


def cancel_run(
    session: Session, account_id: str, run_id: str, notify: Callable[[], object] | None = None
) -> Run:
    """Cancel a run: a queued one ends `cancelled` at once; a running one is asked to stop.

    A running run ends on its device (the step in flight finishes, then the bridge reports
    `cancelled`), so here it only gets `cancelRequested`.
    """
    run_id = get_run(session, account_id, run_id).id
    for _ in range(MAX_CLAIM_ATTEMPTS):
        run = session.scalars(
            select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
        ).one()
        status = RunStatus(run.status)
        if status.terminal:
            raise Conflict(f"run {run_id} already ended {status.value}; there is nothing to cancel")
        now = utcnow()
        if status is RunStatus.QUEUED:
            values: dict[str, Any] = {
                "status": RunStatus.CANCELLED.value,
                "status_rank": RunStatus.CANCELLED.rank,
                "ended_at": now,
                "cancel_requested_at": now,
            }
        elif run.cancel_requested_at is None:
            values = {"cancel_requested_at": now}
        else:
            return run
        changed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == status.value, Run.trace_len == run.trace_len)
            .values(**values, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            # A pending approval of a cancelled run is rejected with the reason "cancelled".
            cancel_pending_approvals(session, run_id, now)
            record_changes(session, account_id, [run_id], notify)
            if status is RunStatus.QUEUED:
                runs_ended(session, account_id, [run_id])
            return session.scalars(
                select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
            ).one()
    raise Conflict(f"run {run_id} kept changing while it was being cancelled; try again")


UNFINISHED_STARTED = frozenset(
    {RunStatus.RUNNING.value, RunStatus.WAITING_FOR_APPROVAL.value, RunStatus.PAUSED.value}
)


def cancel_requested_run_ids(
    session: Session, device_id: str, among: Sequence[str] | None = None
) -> list[str]:
    """Ids of the device's unfinished runs whose cancel was asked (optionally only `among` these).

    The bridge hears of them in its heartbeat (`cancelRunIds`) and in `runs.report` answers
    (`cancelRequested`), stops the run after the step in flight and reports it `cancelled`.
    """
    query = select(Run.id).where(
        Run.device_id == device_id,
        Run.status.in_(sorted(UNFINISHED_STARTED)),
        Run.cancel_requested_at.is_not(None),
    )
    if among is not None:
        if not among:
            return []
        query = query.where(Run.id.in_(set(among)))
    return list(session.scalars(query))


def cancel_requested(run: Row[Any], device_id: str) -> bool:
    """What `cancel_requested_run_ids` says of one run, from its row as read in this transaction."""
    return (
        run.device_id == device_id
        and run.status in UNFINISHED_STARTED
        and run.cancel_requested_at is not None
    )
