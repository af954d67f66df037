"""The events webhooks tell of, and where each is enqueued.

* `run.finished` / `run.failed`: a listener of `server.runs.lifecycle` — in the transaction that ends
  the run (a report storing its final status, a cancel of a queued run);
* `approval.waiting`: `approval_waiting()`, called by the approvals API when a run asks;
* `device.offline`: `notice_offline_devices()`, a job that looks for paired devices silent for
  `device_offline_after_s`: told once per silence (a device heard from again and then silent
  again is told again).

Each event's key (`run.finished:<run id>`, `approval.waiting:<approval id>`,
`device.offline:<device id>:<last seen>`) makes its deliveries unique.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from interpreter.trace import RunStatus
from server.approvals.models import Approval
from server.approvals.service import approval_json
from server.db import utcnow
from server.devices.models import Device
from server.runs.lifecycle import on_runs_ended
from server.runs.models import Run
from server.runs.service import summary_json
from server.runs.sql import dialect_insert, utc_ms
from server.settings import Settings
from server.webhooks.models import DeviceOfflineNotice, WebhookEndpoint, WebhookEvent
from server.webhooks.service import enqueue, subscribed, subscribed_to
from server.workflows.models import Workflow

FAILED_STATUSES = {RunStatus.FAILED.value, RunStatus.TIMEOUT.value}
PUBLIC_URL_KEY = "phoneflow_public_url"  # in Session.info: set by create_app on its session factory
_log = logging.getLogger("phoneflow.webhooks")


def _link(session: Session, path: str) -> str | None:
    """The dashboard address of `path` when the server knows its public URL."""
    base = session.info.get(PUBLIC_URL_KEY)
    return None if not base else str(base).rstrip("/") + path


def _names(
    session: Session, workflow_ids: set[str], device_ids: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    workflows = {
        row.id: row.name
        for row in session.execute(select(Workflow.id, Workflow.name).where(Workflow.id.in_(workflow_ids)))
    }
    devices = {
        row.id: row.name
        for row in session.execute(select(Device.id, Device.name).where(Device.id.in_(device_ids)))
    }
    return workflows, devices


def run_data(
    session: Session, run: Run | Row[Any], workflow_name: str | None, device_name: str | None
) -> dict[str, Any]:
    """A run as events carry it: its summary, the names of its workflow and device, its page."""
    return {
        "run": summary_json(run),
        "workflowName": workflow_name,
        "deviceName": device_name,
        "dashboardUrl": _link(session, f"/runs/{run.id}"),
    }


@on_runs_ended
def runs_ended(session: Session, account_id: str, runs: Sequence[Row[Any]]) -> None:
    """`run.finished` for every run that ended; `run.failed` too for a failure or a timeout."""
    events = [WebhookEvent.RUN_FINISHED.value, WebhookEvent.RUN_FAILED.value]
    endpoints = subscribed_to(session, account_id, events)  # one query: this runs for every ended run
    finished = endpoints[WebhookEvent.RUN_FINISHED.value]
    failed = endpoints[WebhookEvent.RUN_FAILED.value]
    if not finished and not failed:
        return
    workflows, devices = _names(
        session, {run.workflow_id for run in runs}, {run.device_id for run in runs if run.device_id}
    )
    for run in runs:
        data = run_data(session, run, workflows.get(run.workflow_id), devices.get(run.device_id or ""))
        if finished:
            enqueue(
                session, account_id, WebhookEvent.RUN_FINISHED.value, f"run.finished:{run.id}", data, finished
            )
        if failed and run.status in FAILED_STATUSES:
            enqueue(session, account_id, WebhookEvent.RUN_FAILED.value, f"run.failed:{run.id}", data, failed)


def approval_data(session: Session, approval: Approval) -> dict[str, Any]:
    """An approval as `approval.waiting` carries it, with the run it belongs to."""
    run = session.get(Run, approval.run_id)
    assert run is not None  # the approval's row cascades with its run
    workflows, devices = _names(session, {run.workflow_id}, {run.device_id} if run.device_id else set())
    return {
        "approval": {
            key: utc_ms(value) if isinstance(value, datetime) else value
            for key, value in approval_json(approval).items()
        },
        **run_data(session, run, workflows.get(run.workflow_id), devices.get(run.device_id or "")),
    }


def approval_waiting(session: Session, approval: Approval) -> None:
    """Tell the account's endpoints that a run waits for this approval (once per approval)."""
    endpoints = subscribed(session, approval.account_id, WebhookEvent.APPROVAL_WAITING.value)
    if endpoints:
        data = approval_data(session, approval)
        enqueue(
            session,
            approval.account_id,
            WebhookEvent.APPROVAL_WAITING.value,
            f"approval.waiting:{approval.id}",
            data,
            endpoints,
        )


# --- device.offline --------------------------------------------------------------------------


def notice_offline_devices(
    session_factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> int:
    """Enqueue `device.offline` for devices silent for `device_offline_after_s`; how many were told.

    Only accounts with an endpoint for the event are looked at. The notice row is written with a
    conditional upsert: of several processes looking at once, one tells each silence.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.device_offline_after_s)
    told = 0
    with session_factory.begin() as session:
        endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))).all()
        accounts = {e.account_id for e in endpoints if WebhookEvent.DEVICE_OFFLINE.value in e.events}
        if not accounts:
            return 0
        silent = session.execute(
            select(Device, DeviceOfflineNotice.last_seen_at)
            .outerjoin(DeviceOfflineNotice, DeviceOfflineNotice.device_id == Device.id)
            .where(
                Device.account_id.in_(accounts),
                Device.revoked_at.is_(None),
                Device.last_seen_at.is_not(None),
                Device.last_seen_at < cutoff,
            )
        ).all()
        for device, told_for in silent:
            if told_for is not None and told_for == device.last_seen_at:
                continue
            if not _mark(session, device):
                continue
            data = {
                "device": {
                    "id": device.id,
                    "name": device.name,
                    "serial": device.serial,
                    "model": device.model,
                    "lastSeenAt": utc_ms(device.last_seen_at) if device.last_seen_at else None,
                },
                "offlineAfterS": settings.device_offline_after_s,
                "dashboardUrl": _link(session, "/devices"),
            }
            key = f"device.offline:{device.id}:{utc_ms(device.last_seen_at) if device.last_seen_at else ''}"
            enqueue(session, device.account_id, WebhookEvent.DEVICE_OFFLINE.value, key, data)
            told += 1
    if told:
        _log.info("webhooks: %d device(s) went offline", told)
    return told


def _mark(session: Session, device: Device) -> bool:
    """Record that this silence is told; False when another process recorded it first."""
    insert = dialect_insert(session, DeviceOfflineNotice).values(
        device_id=device.id, last_seen_at=device.last_seen_at
    )
    upsert = insert.on_conflict_do_update(
        index_elements=["device_id"],
        set_={"last_seen_at": insert.excluded.last_seen_at},
        where=DeviceOfflineNotice.last_seen_at != insert.excluded.last_seen_at,
    ).returning(DeviceOfflineNotice.device_id)
    return session.execute(upsert).first() is not None
