"""Run leases: a bridge starts a run's steps without asking the step gate while its lease holds.

A bridge that asks for it (`{"lease": true}` as the claim's body, `"lease": true` in the gate's) gets
`leaseMs` with the answer when the run is `running` with no cancel asked (the claim's own UPDATE sets
it, or `grant_lease`): until then it may start steps without asking the gate (its clock counts from
before it sent the request, so its lease ends before the server's `runs.lease_until`). The run's
progress still reaches the server (runs.report, at most `interval_s` late) and a long step is still
announced as the step in flight.

The promises of cancel and pause stay whole: once the server has accepted a cancel no further step
starts, and a paused run starts none until resumed. The grant is one conditional UPDATE
(`status = 'running' AND cancel_requested_at IS NULL`), and a cancel or a pause changes the same
row: whichever commits first, the other sees it (the grant finds the run cancelled or paused and
grants nothing, or the cancel finds the lease). So a cancel or pause, once committed, waits until
the lease it found has run out before it answers (`commit_then_wait_out`): at most `run_lease_s`,
less when a gate tells the bridge of the cancel or pause first (`end_lease`: a leased step that runs
long is announced by a gate, which hears it).
A denylist change does the same for the account's leased runs: the phone enforces the new list
from its next step once the change is answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.db import utcnow
from server.runs.models import Run

_runs: Table = Run.__table__  # type: ignore[assignment]
# How often a waiting cancel or pause looks whether the lease ended early.
LOOK_AGAIN_S = 0.05

_GRANT = (
    update(_runs)
    .where(
        _runs.c.id == bindparam("run_id"),
        _runs.c.status == RunStatus.RUNNING.value,
        _runs.c.cancel_requested_at.is_(None),
    )
    .values(lease_until=bindparam("until", type_=_runs.c.lease_until.type))
)


def grant_lease(session: Session, run_id: str, lease_s: float) -> int | None:
    """Give the run's bridge a lease of `lease_s` from now: the lease in milliseconds, or None when the
    run is not `running`, a cancel was asked, or leases are off (`lease_s` 0)."""
    if lease_s <= 0:
        return None
    granted = session.connection().execute(
        _GRANT, {"run_id": run_id, "until": utcnow() + timedelta(seconds=lease_s)}
    )
    return int(lease_s * 1000) if granted.rowcount == 1 else None


_REVOKE = (
    update(_runs)
    .where(_runs.c.id == bindparam("run_id"), _runs.c.lease_until.is_not(None))
    .values(lease_until=None)
)


def end_lease(session: Session, run_id: str) -> None:
    """The run's bridge was just told of a cancel or a pause (a gate's answer): it starts no step under its
    lease any more, so a cancel or pause waiting for the lease may answer now."""
    session.connection().execute(_REVOKE, {"run_id": run_id})


def run_lease_until(session: Session, run_id: str) -> datetime | None:
    """When the lease of a run runs out (None: it never had one), as committed now."""
    return session.execute(select(Run.lease_until).where(Run.id == run_id)).scalar_one_or_none()


def account_lease_until(session: Session, account_id: str, lease_s: float) -> datetime | None:
    """Until when a lease granted under the account's denylist as it was before now may hold: now plus a
    lease when one of its `running` runs is served under leases (a gate that read the old list may
    grant one after this look), else when its latest lease runs out; None when no run of the account
    can hold one (a bridge that never asked for a lease makes nobody wait)."""
    latest, moving = session.execute(
        select(
            func.max(Run.lease_until),
            func.count().filter(Run.status == RunStatus.RUNNING.value),
        ).where(
            Run.account_id == account_id,
            Run.status.in_([RunStatus.RUNNING.value, RunStatus.PAUSED.value]),
            Run.lease_until.is_not(None),
        )
    ).one()
    if moving and lease_s > 0:
        return utcnow() + timedelta(seconds=lease_s)
    return latest


def commit_then_wait_out(session: Session, lease_until: Callable[[Session], datetime | None]) -> None:
    """Commit the change (a cancel, a pause, a denied package), then sleep until the leases it must outlast
    (`lease_until`, read after the commit) have run out: the change is answered only then (see the
    module docstring). Called in a worker thread."""
    session.commit()
    deadline: datetime | None = None
    while True:
        until = lease_until(session)
        session.commit()  # end the read's transaction: nothing is held while waiting
        if until is None:
            return
        # A later look may find the lease ended early (`end_lease`), never one the change must outlast.
        deadline = until if deadline is None else min(deadline, until)
        remaining = (deadline - utcnow()).total_seconds()
        if remaining <= 0:
            return
        time.sleep(min(remaining, LOOK_AGAIN_S))
