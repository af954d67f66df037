"""A phone's health as its bridge's heartbeats tell it, and `device.updated` when it changes.

Every heartbeat stores what the bridge said of itself (`devices.bridge_health`) and of the phone
(`devices.phone_health`: adb state, battery, charging, screen, the app in front, the run in hand).
When what a person would see changes — the phone comes or goes (its adb state, or a heartbeat
after a silence of `ONLINE_WINDOW`), its battery, screen, app or run, the bridge's worker state —
the heartbeat's transaction also writes a `device.updated` row to the `run_events` log: it reaches
every SSE subscriber of the account (`GET /api/v1/events`, the dashboard's Devices page) the way
`run.updated` does, across server processes too (PostgreSQL `NOTIFY`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from server.db import after_commit, utcnow
from server.devices.models import ONLINE_WINDOW, Device, is_online
from server.runs.models import RunEvent
from server.runs.pg_notify import notify_on_commit

DEVICE_UPDATED = "device.updated"
# Said anew at every heartbeat: not a change a person needs to see.
_VOLATILE = ("checkedAt", "lastWorkerErrorAt")


def _visible(health: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (health or {}).items() if key not in _VOLATILE}


def device_event(device: Device) -> dict[str, Any]:
    """The `device.updated` payload: the device's id, whether it is online, and both healths."""
    return {
        "id": device.id,
        "online": is_online(device),
        "lastSeenAt": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "phoneHealth": device.phone_health,
        "bridgeHealth": device.bridge_health,
    }


def record_heartbeat(
    session: Session,
    device: Device,
    bridge: dict[str, Any] | None,
    phone: dict[str, Any] | None,
    notify: Callable[[], object] | None,
    now: datetime | None = None,
) -> bool:
    """Store one heartbeat; write `device.updated` when what it shows changed. True when it did."""
    now = now or utcnow()
    was_silent = device.last_seen_at is None or now - device.last_seen_at >= ONLINE_WINDOW
    changed = was_silent
    if bridge is not None:
        changed = changed or _visible(bridge).get("worker") != _visible(device.bridge_health).get("worker")
        device.bridge_health = bridge
    if phone is not None:
        changed = changed or _visible(phone) != _visible(device.phone_health)
        device.phone_health = phone
    device.last_seen_at = now
    if not changed:
        return False
    session.execute(
        insert(RunEvent).values(
            account_id=device.account_id,
            run_id="",
            payload=device_event(device),
            event=DEVICE_UPDATED,
            created_at=now,
        )
    )
    notify_on_commit(session)
    if notify is not None:
        after_commit(session, notify)
    return True
