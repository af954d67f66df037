"""Approvals: asked by a device, answered by a person of the account, ended by a cancel or a timeout.

Nothing here commits: the request's session owns the transaction. An approval past its
`expires_at` that nobody answered reads as `timed_out` (computed on read; written down the
next time something tries to decide it), so no background job is needed. An approval without
`expires_at` (the node's `timeoutS` 0) stays pending until it is answered or its run cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from interpreter.trace import RunStatus
from server.accounts.models import Account
from server.approvals.models import Approval, ApprovalStatus
from server.db import new_id, utcnow
from server.devices.models import Device
from server.errors import Conflict, Forbidden, NotFound
from server.runs.models import Run
from server.runs.sql import dialect_insert, utc_ms

CANCELLED_NOTE = "cancelled"


def effective_status(approval: Approval, now: datetime | None = None) -> ApprovalStatus:
    """The status as callers see it: a pending approval past `expires_at` has timed out."""
    status = ApprovalStatus(approval.status)
    expires = approval.expires_at
    if status is ApprovalStatus.PENDING and expires is not None and (now or utcnow()) >= expires:
        return ApprovalStatus.TIMED_OUT
    return status


def approval_json(approval: Approval, now: datetime | None = None) -> dict[str, Any]:
    status = effective_status(approval, now)
    timed_out_now = status is ApprovalStatus.TIMED_OUT and approval.status == ApprovalStatus.PENDING.value
    return {
        "id": approval.id,
        "runId": approval.run_id,
        "nodeId": approval.node_id,
        "visit": approval.visit,
        "message": approval.message,
        "approvers": list(approval.approvers or []),
        "status": status.value,
        "requestedAt": approval.requested_at,
        "expiresAt": approval.expires_at,
        "decidedAt": approval.expires_at if timed_out_now else approval.decided_at,
        "decidedBy": approval.decided_by,
        "decidedVia": approval.decided_via,
        "note": approval.note,
    }


def _unexpired(now: datetime) -> ColumnElement[bool]:
    """Not past its time limit (or without one)."""
    return or_(Approval.expires_at.is_(None), Approval.expires_at > now)


def _status_filter(status: ApprovalStatus, now: datetime) -> ColumnElement[bool]:
    pending = Approval.status == ApprovalStatus.PENDING.value
    if status is ApprovalStatus.PENDING:
        return and_(pending, _unexpired(now))
    if status is ApprovalStatus.TIMED_OUT:
        return or_(
            Approval.status == ApprovalStatus.TIMED_OUT.value, and_(pending, Approval.expires_at <= now)
        )
    return Approval.status == status.value


# --- the device side ---------------------------------------------------------------------------


def request_approval(
    session: Session,
    device: Device,
    *,
    run_id: str,
    node_id: str,
    visit: int,
    message: str,
    approvers: list[str],
    timeout_s: float,
) -> tuple[Approval, bool]:
    """The approval of this visit of `run_id` to `node_id`, made now or (sent again) the one made before.

    Returns the approval and whether it was made by this call. The run must be one of this
    device's runs. A run whose cancel was asked (or that has ended) gets its approval
    `cancelled` at once, so that a device that did not hear of the cancel yet stops waiting.
    """
    run = session.scalars(select(Run).where(Run.id == run_id.lower(), Run.device_id == device.id)).first()
    if run is None:
        raise NotFound(
            f"this device has no run {run_id}; ask approvals only for runs this device claimed or reported"
        )
    now = utcnow()
    ended = run.cancel_requested_at is not None or RunStatus(run.status).terminal
    values: dict[str, Any] = {
        "id": new_id(),
        "account_id": run.account_id,
        "run_id": run.id,
        "node_id": node_id,
        "visit": visit,
        "message": message,
        "approvers": approvers,
        "status": ApprovalStatus.CANCELLED.value if ended else ApprovalStatus.PENDING.value,
        "requested_at": now,
        "expires_at": now + timedelta(seconds=timeout_s) if timeout_s > 0 else None,
        "decided_at": now if ended else None,
        "note": CANCELLED_NOTE if ended else None,
    }
    session.execute(
        dialect_insert(session, Approval)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["run_id", "node_id", "visit"])
    )
    approval = session.scalars(
        select(Approval)
        .where(Approval.run_id == run.id, Approval.node_id == node_id, Approval.visit == visit)
        .execution_options(populate_existing=True)
    ).one()
    return approval, approval.id == values["id"]


def device_approval(session: Session, device: Device, approval_id: str) -> Approval:
    """One approval of one of this device's runs; 404 otherwise."""
    approval = session.scalars(
        select(Approval)
        .join(Run, Run.id == Approval.run_id)
        .where(Approval.id == approval_id.lower(), Run.device_id == device.id)
    ).first()
    if approval is None:
        raise NotFound(
            f"this device has no approval {approval_id}; ask one with POST /api/v1/devices/me/approvals"
        )
    return approval


# --- the account side --------------------------------------------------------------------------


def get_approval(session: Session, account_id: str, approval_id: str) -> Approval:
    approval = session.scalars(
        select(Approval).where(Approval.id == approval_id.lower(), Approval.account_id == account_id)
    ).first()
    if approval is None:
        raise NotFound(f"no approval {approval_id} in this account; list them with GET /api/v1/approvals")
    return approval


def list_approvals(
    session: Session,
    account_id: str,
    *,
    status: ApprovalStatus | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[Approval]:
    """The account's approvals, newest first, optionally of one status and one run."""
    query = select(Approval).where(Approval.account_id == account_id)
    if status is not None:
        query = query.where(_status_filter(status, utcnow()))
    if run_id is not None:
        query = query.where(Approval.run_id == run_id.lower())
    query = query.order_by(Approval.requested_at.desc(), Approval.id.desc()).limit(limit)
    return list(session.scalars(query))


def pending_for_runs(session: Session, account_id: str, run_ids: list[str]) -> list[Approval]:
    """The pending (unexpired) approvals of these runs of the account, oldest first."""
    if not run_ids:
        return []
    return list(
        session.scalars(
            select(Approval)
            .where(
                Approval.account_id == account_id,
                Approval.run_id.in_(run_ids),
                _status_filter(ApprovalStatus.PENDING, utcnow()),
            )
            .order_by(Approval.requested_at, Approval.id)
        )
    )


def count_pending(session: Session, account_id: str) -> int:
    """How many of the account's approvals wait for an answer."""
    count = session.scalar(
        select(func.count())
        .select_from(Approval)
        .where(Approval.account_id == account_id, _status_filter(ApprovalStatus.PENDING, utcnow()))
    )
    return int(count or 0)


def _not_pending(approval: Approval, now: datetime) -> Conflict:
    status = effective_status(approval, now)
    name = f"approval {approval.id}"
    if status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        when = utc_ms(approval.decided_at) if approval.decided_at else "an earlier time"
        return Conflict(
            f"{name} was already {status.value} by {approval.decided_by or 'someone'} at {when}; "
            "an approval is answered once"
        )
    if status is ApprovalStatus.TIMED_OUT and approval.expires_at is not None:
        return Conflict(
            f"{name} timed out at {utc_ms(approval.expires_at)}: nobody answered in time, and the run "
            "went on along its 'rejected' path"
        )
    when = utc_ms(approval.decided_at) if approval.decided_at else "an earlier time"
    return Conflict(
        f"{name} was cancelled at {when} because its run was cancelled; there is nothing to answer"
    )


def may_answer(approval: Approval, account: Account) -> bool:
    approvers = [a.strip().lower() for a in approval.approvers or []]
    return not approvers or account.email.strip().lower() in approvers


def decide(
    session: Session,
    account: Account,
    approval_id: str,
    *,
    approve: bool,
    note: str | None,
    via: str = "api",
) -> Approval:
    """Approve or reject a pending approval as `account` (its email is recorded as who answered, and
    `via` where: `dashboard` or `api`).

    409 when it is no longer pending (saying why); 403 when the approval names its approvers
    and this account is not one of them.
    """
    approval = get_approval(session, account.id, approval_id)
    now = utcnow()
    if effective_status(approval, now) is not ApprovalStatus.PENDING:
        raise _not_pending(approval, now)
    if not may_answer(approval, account):
        raise Forbidden(
            f"only {', '.join(approval.approvers)} may answer approval {approval.id}; "
            f"you are signed in as {account.email}"
        )
    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    changed = session.execute(
        update(Approval)
        .where(
            Approval.id == approval.id,
            Approval.status == ApprovalStatus.PENDING.value,
            _unexpired(now),
        )
        .values(status=status.value, decided_at=now, decided_by=account.email, decided_via=via, note=note)
        .execution_options(synchronize_session=False)
    )
    fresh = session.scalars(
        select(Approval).where(Approval.id == approval.id).execution_options(populate_existing=True)
    ).one()
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise _not_pending(fresh, utcnow())
    return fresh


def cancel_pending(session: Session, run_id: str, now: datetime | None = None) -> int:
    """Mark the run's pending approvals `cancelled` (the run was cancelled); how many were."""
    now = now or utcnow()
    result = session.execute(
        update(Approval)
        .where(
            Approval.run_id == run_id,
            Approval.status == ApprovalStatus.PENDING.value,
            _unexpired(now),  # one that already timed out stays timed out
        )
        .values(status=ApprovalStatus.CANCELLED.value, decided_at=now, note=CANCELLED_NOTE)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
