"""Pause and resume a moving run (`POST /api/v1/runs/{id}/pause` · `/resume`).

The server owns `paused`: a pause moves a `running` run to `paused` here, and the phone hears of
it from the step gate (`"paused": true`) before its next step: the step in flight finishes, then
the run holds between steps, asking the gate again until it is resumed or cancelled. While a run
is `paused`, its device's reports still add to its trace (the step that was in flight) but do not
move it back to `running`; only a resume does, or an end (a cancel while paused ends `cancelled`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.db import utcnow
from server.errors import Conflict
from server.runs.models import Run
from server.runs.service import MAX_CLAIM_ATTEMPTS, get_run, record_changes


def pause_run(
    session: Session, account_id: str, run_id: str, notify: Callable[[], object] | None = None
) -> Run:
    """Move a `running` run to `paused` (a paused one stays as it is); 409 for any other status."""
    return _move(session, account_id, run_id, RunStatus.RUNNING, RunStatus.PAUSED, notify)


def resume_run(
    session: Session, account_id: str, run_id: str, notify: Callable[[], object] | None = None
) -> Run:
    """Move a `paused` run back to `running` (a running one stays as it is); 409 for any other status."""
    return _move(session, account_id, run_id, RunStatus.PAUSED, RunStatus.RUNNING, notify)


def _move(
    session: Session,
    account_id: str,
    run_id: str,
    source: RunStatus,
    target: RunStatus,
    notify: Callable[[], object] | None,
) -> Run:
    run_id = get_run(session, account_id, run_id).id
    verb = "pause" if target is RunStatus.PAUSED else "resume"
    for _ in range(MAX_CLAIM_ATTEMPTS):
        run = session.scalars(
            select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
        ).one()
        status = RunStatus(run.status)
        if status is target:
            return run
        if status is not source:
            raise Conflict(_refusal(run_id, status, verb))
        if run.cancel_requested_at is not None:
            raise Conflict(f"run {run_id} is being cancelled; it stops after its current step")
        changed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == source.value, Run.trace_len == run.trace_len)
            .values(status=target.value, status_rank=target.rank, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            record_changes(session, account_id, [run_id], notify)
            return session.scalars(
                select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
            ).one()
    raise Conflict(f"run {run_id} kept changing while it was being {verb}d; try again")


def _refusal(run_id: str, status: RunStatus, verb: str) -> str:
    if status.terminal:
        return f"run {run_id} already ended {status.value}; there is nothing to {verb}"
    if status is RunStatus.QUEUED:
        return f"run {run_id} has not started; only a moving run can be paused (cancel a queued one)"
    if status is RunStatus.WAITING_FOR_APPROVAL:
        return (
            f"run {run_id} is waiting for an approval, which holds it already; answer the approval, "
            "then pause it"
        )
    return f"run {run_id} is {status.value}, not paused; there is nothing to resume"
