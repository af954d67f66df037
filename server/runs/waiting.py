"""Why a queued run waits: what `GET /api/v1/runs/{id}` answers as `waiting` and the run page shows.

Worked out when asked, from what the server knows: the run's backoff (`notBefore`), its device
(revoked, never called in, silent since…, its bridge's health from the last heartbeat), the device's
other runs (one in hand, earlier ones queued), and for a run any phone with a tag may take, those
phones. A device counts as offline when it has not called in for `OFFLINE_AFTER` (a bridge
heartbeats every few seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.db import utcnow
from server.devices.models import Device
from server.runs.models import Run
from server.runs.sql import utc_ms

OFFLINE_AFTER = timedelta(seconds=60)
IN_HAND = (RunStatus.RUNNING.value, RunStatus.WAITING_FOR_APPROVAL.value, RunStatus.PAUSED.value)


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why a run waits: a stable `reason` code for scripts, a `message` for people, and when known
    `since` (the moment the cause began) and `runId` (the run that holds the phone)."""

    reason: str
    message: str
    since: datetime | None = None
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "message": self.message,
            "since": None if self.since is None else utc_ms(self.since),
            "runId": self.run_id,
        }


def why_waiting(session: Session, run: Run, now: datetime | None = None) -> Waiting | None:
    """Why `run` is still queued; None for a run that is not queued."""
    if run.status != RunStatus.QUEUED.value:
        return None
    now = now or utcnow()
    if run.not_before is not None and run.not_before > now:
        return Waiting(
            "backoff",
            f"an automatic retry: no phone takes it before {utc_ms(run.not_before)} (its backoff)",
            since=run.created_at,
        )
    if run.device_id is None:
        return _tagged(session, run, now)
    device = session.get(Device, run.device_id)
    if device is None or device.revoked_at is not None:
        return Waiting(
            "device_revoked",
            "its device was revoked or removed and will never take it: cancel it, or trigger the "
            "workflow on another phone",
            since=device.revoked_at if device is not None else None,
        )
    offline = _offline(device, now)
    if offline is not None:
        return offline
    health = device.bridge_health or {}
    if health.get("worker") not in (None, "serving"):
        problem = health.get("deviceProblem") or health.get("lastWorkerError") or health.get("worker")
        return Waiting(
            "bridge_not_serving",
            f"the bridge is up but does not serve {device.name} now: {problem}",
            since=device.last_seen_at,
        )
    busy = session.execute(
        select(Run.id, Run.status, Run.started_at)
        .where(Run.device_id == device.id, Run.status.in_(IN_HAND))
        .order_by(Run.created_at)
        .limit(1)
    ).first()
    if busy is not None:
        return Waiting(
            "device_busy",
            f"{device.name} is busy with run {busy.id[:8]} ({busy.status.replace('_', ' ')}); "
            "it takes this run when that one ends",
            since=busy.started_at,
            run_id=busy.id,
        )
    ahead = session.scalar(
        select(func.count())
        .select_from(Run)
        .where(
            Run.device_id == device.id,
            Run.status == RunStatus.QUEUED.value,
            (Run.created_at < run.created_at) | ((Run.created_at == run.created_at) & (Run.id < run.id)),
        )
    )
    if ahead:
        return Waiting(
            "queued_behind",
            f"{device.name} takes its queued runs oldest first: {ahead} earlier one(s) go first",
        )
    return Waiting(
        "claiming",
        f"{device.name} is online and free: its bridge takes the run at its next claim (within seconds)",
        since=device.last_seen_at,
    )


def _offline(device: Device, now: datetime) -> Waiting | None:
    if device.last_seen_at is None:
        return Waiting(
            "no_bridge",
            f"no bridge has served {device.name} yet: on the computer it is plugged into, run "
            "`phoneflow bridge run`",
        )
    if now - device.last_seen_at > OFFLINE_AFTER:
        return Waiting(
            "device_offline",
            f"{device.name} is offline since {utc_ms(device.last_seen_at)}: its bridge has not called in "
            "since; start `phoneflow bridge run` where the phone is plugged in",
            since=device.last_seen_at,
        )
    return None


def _tagged(session: Session, run: Run, now: datetime) -> Waiting:
    tag = run.device_tag or ""
    devices = [
        device
        for device in session.scalars(
            select(Device).where(Device.account_id == run.account_id, Device.revoked_at.is_(None))
        )
        if tag in (device.tags or [])
    ]
    online = [device for device in devices if _offline(device, now) is None]
    if not online:
        return Waiting(
            "no_tagged_phone",
            f"no phone tagged {tag!r} is online ({len(devices)} carry the tag): start their bridges, "
            "or tag another phone",
        )
    busy = set(
        session.scalars(
            select(Run.device_id).where(Run.device_id.in_([d.id for d in online]), Run.status.in_(IN_HAND))
        )
    )
    if len(busy) == len(online):
        return Waiting(
            "tagged_phones_busy",
            f"every online phone tagged {tag!r} is busy ({len(online)}); the first to finish takes it",
        )
    return Waiting(
        "claiming",
        f"{len(online) - len(busy)} phone(s) tagged {tag!r} are free: the first to claim takes it "
        "(within seconds)",
    )
