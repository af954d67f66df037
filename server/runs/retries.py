"""Retries: a finished run queued again (`POST /api/v1/runs/{id}/retry`, the Re-run button), and the
automatic retry a workflow may ask for (`autoRetry`: up to N new runs after a run ends `failed` or
`timeout`, with a backoff that doubles).

A retry is a new run of the same workflow version, on the same device, with the same inputs;
trigger `retry`, `retryOf` naming the run it runs again and `attempt` one more than that run's. An
automatic retry is only claimable from its `notBefore` on (the backoff). Listens to runs ending
(server.runs.lifecycle), in the transaction that ends them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.trace import RunStatus
from server.db import new_id, utcnow
from server.devices.models import Device
from server.errors import Conflict
from server.runs.lifecycle import on_runs_ended
from server.runs.models import Run
from server.runs.service import check_denylist, get_run, record_changes, retried_by
from server.runs.sql import insert_input_values
from server.workflows.models import Workflow, WorkflowVersion

AUTO_RETRY_STATUSES = frozenset({RunStatus.FAILED.value, RunStatus.TIMEOUT.value})
AUTO_RETRY_BY = "auto-retry"


def retry_run(
    session: Session,
    account_id: str,
    run_id: str,
    *,
    global_denylist: Denylist,
    triggered_by: str | None,
    notify: Callable[[], object] | None = None,
) -> Run:
    """A new `queued` run of a finished run's version, device and inputs (trigger `retry`).

    409 while the run has not ended, when its device is gone or revoked, and when its version names
    a package the account's denylist now denies."""
    old = get_run(session, account_id, run_id)
    status = RunStatus(old.status)
    if not status.terminal:
        raise Conflict(
            f"run {old.id} has not ended ({status.value}); wait for it to end, or cancel it with "
            f"POST /api/v1/runs/{old.id}/cancel, then retry it"
        )
    device = session.get(Device, old.device_id) if old.device_id is not None else None
    if device is None:
        raise Conflict(
            f"run {old.id} has no device any more (it was removed); trigger the workflow on another device"
        )
    if device.revoked_at is not None:
        raise Conflict(
            f"device {device.id} was revoked and takes no runs; trigger the workflow on another device"
        )
    version = session.get(WorkflowVersion, old.workflow_version_id)
    workflow = session.get(Workflow, old.workflow_id)
    if version is None or workflow is None:
        raise Conflict(f"the workflow version of run {old.id} no longer exists; trigger the workflow again")
    check_denylist(session, account_id, workflow, version, global_denylist)
    return _queue_retry(session, old, triggered_by=triggered_by, not_before=None, notify=notify)


def _queue_retry(
    session: Session,
    old: Run | Row[Any],
    *,
    triggered_by: str | None,
    not_before: datetime | None,
    notify: Callable[[], object] | None,
) -> Run:
    now = utcnow()
    run = Run(
        id=new_id(),
        account_id=old.account_id,
        workflow_id=old.workflow_id,
        workflow_version_id=old.workflow_version_id,
        device_id=old.device_id,
        status=RunStatus.QUEUED.value,
        status_rank=RunStatus.QUEUED.rank,
        trigger="retry",
        triggered_by=triggered_by,
        inputs=dict(old.inputs or {}),
        trace_len=0,
        frames=getattr(old, "frames", None),  # a retry keeps the screens setting it was triggered with
        retry_of=old.id,
        attempt=(old.attempt or 1) + 1,
        not_before=not_before,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    insert_input_values(session, old.account_id, [(run.id, run.inputs)])
    record_changes(session, old.account_id, [run.id], notify)
    return run


def backoff_s(base_s: int, attempt: int) -> int:
    """The wait before the retry that follows attempt `attempt` (1-based): base, 2×base, 4×base …"""
    return int(base_s * 2 ** (attempt - 1))


@on_runs_ended
def _auto_retry(session: Session, account_id: str, runs: Sequence[Row[Any]]) -> None:
    """Queue the automatic retry of each run that ended failed or timeout, when its workflow asks
    for one and the run's attempt has not used them all up (a retry is queued once per run)."""
    candidates = [run for run in runs if run.status in AUTO_RETRY_STATUSES and run.device_id is not None]
    if not candidates:
        return
    policies = {
        row.id: (row.auto_retry_max, row.auto_retry_backoff_s)
        for row in session.execute(
            select(Workflow.id, Workflow.auto_retry_max, Workflow.auto_retry_backoff_s).where(
                Workflow.id.in_({run.workflow_id for run in candidates})
            )
        )
    }
    live_devices = set(
        session.scalars(
            select(Device.id).where(
                Device.id.in_({run.device_id for run in candidates}), Device.revoked_at.is_(None)
            )
        )
    )
    now = utcnow()
    for run in candidates:
        most, base_s = policies.get(run.workflow_id, (0, 0))
        attempt = run.attempt or 1
        if attempt > most or run.device_id not in live_devices or retried_by(session, run.id):
            continue
        _queue_retry(
            session,
            run,
            triggered_by=AUTO_RETRY_BY,
            not_before=now + timedelta(seconds=backoff_s(base_s, attempt)),
            notify=None,
        )
