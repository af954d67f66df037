"""The step gate: what a bridge asks before every step of a run it is running.

`POST /api/v1/devices/me/runs/{id}/gate` answers whether a cancel of the run was accepted,
whether the run is paused (the phone holds before its next step and asks again), and which
version of the account's effective denylist is in force. It is one indexed query
(the run by primary key, joined with the account's denylist entries by their
`(account_id, pattern)` index), so that it can be asked before every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from server.denylist.models import DenylistEntry
from server.denylist.service import denylist_version
from server.devices.models import Device
from server.errors import NotFound
from server.runs.models import Run


@dataclass(frozen=True, slots=True)
class GateAnswer:
    status: str
    cancel_requested: bool
    denylist_version: str

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
        }


def gate(session: Session, device: Device, run_id: str, global_denylist: Denylist) -> GateAnswer:
    """The gate's answer for one of `device`'s runs; 404 for a run that is not this device's."""
    rows = session.execute(
        select(Run.status, Run.cancel_requested_at, DenylistEntry.pattern)
        .select_from(Run)
        .outerjoin(DenylistEntry, DenylistEntry.account_id == Run.account_id)
        .where(Run.id == run_id.lower(), Run.device_id == device.id)
    ).all()
    if not rows:
        raise NotFound(
            f"this device has no run {run_id}: ask the gate only for runs this device claimed or reported"
        )
    status, cancel_requested_at, _ = rows[0]
    patterns = [*global_denylist.entries, *(row[2] for row in rows if row[2] is not None)]
    return GateAnswer(status, cancel_requested_at is not None, denylist_version(patterns))
