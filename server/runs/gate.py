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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from server.db import after_commit, utcnow
from server.denylist.models import DenylistEntry
from server.denylist.service import denylist_version
from server.devices.models import Device
from server.errors import NotFound
from server.runs.events import RUN_STEP
from server.runs.models import Run, RunEvent
from server.runs.pg_notify import notify_on_commit
from server.runs.sql import serialize_run_event_ids


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
    serialize_run_event_ids(session)
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
