"""Schedules: create, read, change and delete them; dispatch the due ones as runs.

The API's functions add and flush only: the request's session owns the transaction.
`dispatch_due_schedules` is the background job's work and commits its own transactions,
one per schedule, so that one schedule's trouble never holds up another's run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from interpreter.denylist import Denylist
from server.accounts.models import Account
from server.db import utcnow
from server.devices.models import Device
from server.errors import AppError, Conflict, NotFound, ValidationFailed
from server.runs.service import _check_inputs, _published_version, check_denylist, trigger_run
from server.runs.sql import utc_ms
from server.schedules.cron import first_fire_after, next_fire_after, parse_cron, parse_timezone
from server.schedules.models import Schedule
from server.workflows.service import get_workflow

DISPATCH_BATCH = 200
_log = logging.getLogger("phoneflow.schedules")


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API shows it."""
    return {
        "id": schedule.id,
        "workflowId": schedule.workflow_id,
        "deviceId": schedule.device_id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "inputs": schedule.inputs,
        "enabled": schedule.enabled,
        "nextFireAt": utc_ms(schedule.next_fire_at),
        "lastFiredAt": None if schedule.last_fired_at is None else utc_ms(schedule.last_fired_at),
        "lastError": schedule.last_error,
        "createdAt": utc_ms(schedule.created_at),
        "updatedAt": utc_ms(schedule.updated_at),
    }


def _account_device(session: Session, account_id: str, device_id: str) -> Device:
    device = session.scalars(
        select(Device).where(Device.id == device_id, Device.account_id == account_id)
    ).first()
    if device is None:
        raise NotFound(f"no device {device_id} in this account; list devices with GET /api/v1/devices")
    return device


def _check_runnable(
    session: Session,
    account_id: str,
    workflow_id: str,
    device: Device,
    inputs: Any,
    global_denylist: Denylist | None,
) -> None:
    """The refusals `trigger_run` would give now: revoked device, nothing published, wrong inputs, a
    package the denylist (the server's `global_denylist` and the account's entries) denies now."""
    if device.revoked_at is not None:
        raise Conflict(
            f"device {device.id} was revoked and takes no runs; pair a device again and schedule on it"
        )
    workflow, version = _published_version(session, account_id, workflow_id)
    _check_inputs(version.definition, inputs)
    check_denylist(session, account_id, workflow, version, global_denylist or Denylist())


def get_schedule(session: Session, account_id: str, schedule_id: str) -> Schedule:
    """The account's schedule `schedule_id`; 404 for none (another account's included)."""
    schedule = session.scalars(
        select(Schedule).where(Schedule.id == schedule_id.lower(), Schedule.account_id == account_id)
    ).first()
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id} in this account; list them with GET /api/v1/schedules")
    return schedule


def list_schedules(session: Session, account_id: str, workflow_id: str | None = None) -> list[Schedule]:
    """The account's schedules (of one workflow when given), oldest first."""
    query = select(Schedule).where(Schedule.account_id == account_id)
    if workflow_id is not None:
        query = query.where(Schedule.workflow_id == workflow_id)
    return list(session.scalars(query.order_by(Schedule.created_at, Schedule.id)))


def create_schedule(
    session: Session,
    account: Account,
    workflow_id: str,
    *,
    device_id: str,
    cron: str,
    timezone: str = "UTC",
    inputs: dict[str, Any] | None = None,
    enabled: bool = True,
    now: datetime | None = None,
    global_denylist: Denylist | None = None,
) -> Schedule:
    """A new schedule of one of the account's workflows on one of its devices.

    Refused as `trigger_run` would refuse the run (404 device, 409 revoked device or nothing
    published, 422 inputs), and with a 422 for a bad crontab or time zone.
    """
    now = now or utcnow()
    inputs = {} if inputs is None else inputs
    get_workflow(session, account, workflow_id)  # 404 for another account's workflow first
    next_fire_at = _next_fire(cron, timezone, now)
    device = _account_device(session, account.id, device_id)
    _check_runnable(session, account.id, workflow_id, device, inputs, global_denylist)
    schedule = Schedule(
        account_id=account.id,
        workflow_id=workflow_id,
        device_id=device.id,
        cron=cron,
        timezone=timezone,
        inputs=inputs,
        enabled=enabled,
        next_fire_at=next_fire_at,
        created_at=now,
        updated_at=now,
    )
    session.add(schedule)
    session.flush()
    return schedule


def _next_fire(cron: str, timezone: str, now: datetime) -> datetime:
    """Both fields checked (every problem listed), then the first slot after `now`."""
    problems = []
    zone = None
    try:
        zone = parse_timezone(timezone)
    except ValidationFailed as exc:
        problems.extend(exc.errors)
    try:
        parse_cron(cron, zone)
    except ValidationFailed as exc:
        problems.extend(exc.errors)
    if problems:
        raise ValidationFailed(problems)
    assert zone is not None
    return first_fire_after(cron, zone, now)


@dataclass(frozen=True, slots=True)
class ScheduleChanges:
    """A PATCH: None leaves a field as it is."""

    cron: str | None = None
    timezone: str | None = None
    inputs: dict[str, Any] | None = None
    enabled: bool | None = None
    device_id: str | None = None


def update_schedule(
    session: Session,
    account_id: str,
    schedule_id: str,
    changes: ScheduleChanges,
    *,
    now: datetime | None = None,
    global_denylist: Denylist | None = None,
) -> Schedule:
    """Change a schedule and recompute its next slot from now.

    An enabled result must be runnable now (the same refusals as creating it); a disabled one
    only needs a valid crontab and time zone and a device of the account, so that a schedule
    whose device was revoked can still be switched off.
    """
    now = now or utcnow()
    schedule = get_schedule(session, account_id, schedule_id)
    cron = schedule.cron if changes.cron is None else changes.cron
    timezone = schedule.timezone if changes.timezone is None else changes.timezone
    inputs = schedule.inputs if changes.inputs is None else changes.inputs
    enabled = schedule.enabled if changes.enabled is None else changes.enabled
    next_fire_at = _next_fire(cron, timezone, now)
    device = _account_device(session, account_id, changes.device_id or schedule.device_id)
    if enabled:
        _check_runnable(session, account_id, schedule.workflow_id, device, inputs, global_denylist)
        schedule.last_error = None  # whatever went wrong before, it would run now
    schedule.cron = cron
    schedule.timezone = timezone
    schedule.inputs = inputs
    schedule.enabled = enabled
    schedule.device_id = device.id
    schedule.next_fire_at = next_fire_at
    schedule.updated_at = now
    session.flush()
    return schedule


def delete_schedule(session: Session, account_id: str, schedule_id: str) -> None:
    """Remove a schedule; the runs it made stay."""
    session.delete(get_schedule(session, account_id, schedule_id))
    session.flush()


# --- dispatch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one pass did: runs created, fires that could not make a run, fires another process took."""

    fired: int = 0
    failed: int = 0
    skipped: int = 0


def _why_not(schedule: Schedule, error: AppError, slot: datetime) -> str:
    """`last_error` for a fire that made no run: what happened and what to do."""
    fix = f"PATCH /api/v1/schedules/{schedule.id}"
    advice = ""
    if isinstance(error, ValidationFailed):
        advice = f"; give inputs the published version accepts ({fix} with inputs)"
    elif isinstance(error, Conflict) and "revoked" in error.message:
        advice = f"; point the schedule at a paired device ({fix} with deviceId)"
    return f"no run at {utc_ms(slot)}: {error.message}{advice}. The schedule keeps firing at its next slot."


def _fire(
    session: Session,
    schedule_id: str,
    seen: datetime,
    now: datetime,
    notify: Callable[[], object] | None,
    global_denylist: Denylist,
) -> str:
    """One due schedule: advance it (only if nobody else did) and make its run. Returns the outcome."""
    schedule = session.get(Schedule, schedule_id, populate_existing=True)
    if schedule is None or not schedule.enabled or schedule.next_fire_at != seen:
        return "skipped"
    try:
        following = next_fire_after(parse_cron(schedule.cron, parse_timezone(schedule.timezone)), now)
    except ValidationFailed as exc:  # stored before a rule changed (a time zone left tzdata): stop it
        following = None
        problem = exc.errors[0].message
    else:
        problem = "its crontab matches no date after now"
    values: dict[str, Any] = {"updated_at": now}
    if following is None:
        values.update(enabled=False, last_error=f"disabled: {problem}; fix the schedule and enable it again")
    else:
        values["next_fire_at"] = following
    # Several processes may fire the same slot: the row decides. Whoever moves next_fire_at
    # off `seen` makes the run; the others' UPDATE matches nothing (PostgreSQL re-checks the
    # condition after the winner commits; SQLite's BEGIN IMMEDIATE lets one writer in at a time).
    advanced = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.next_fire_at == seen, Schedule.enabled.is_(True))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if advanced.rowcount != 1:  # type: ignore[attr-defined]
        return "skipped"
    if following is None:
        return "failed"
    account = session.get(Account, schedule.account_id)
    assert account is not None  # the schedule's row cascades with its account
    try:
        trigger_run(
            session,
            account,
            schedule.workflow_id,
            schedule.device_id,
            schedule.inputs,
            global_denylist=global_denylist,
            trigger="schedule",
            triggered_by=f"schedule:{schedule.id}",
            notify=notify,
        )
    except AppError as exc:
        session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id)
            .values(last_error=_why_not(schedule, exc, seen))
            .execution_options(synchronize_session=False)
        )
        return "failed"
    session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id)
        .values(last_fired_at=now, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return "fired"


def dispatch_due_schedules(
    session_factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    notify: Callable[[], object] | None = None,
    batch_size: int = DISPATCH_BATCH,
    global_denylist: Callable[[], Denylist] = Denylist,
) -> DispatchReport:
    """Fire every enabled schedule whose `next_fire_at` has come: one queued run per schedule.

    A run is refused as `trigger_run` refuses it, the package denylist included (the server's
    global list as `global_denylist()` gives it now, plus the account's entries).

    Slots missed while no server ran are coalesced: one run, then the next slot after `now`.
    Each schedule is its own transaction (advance + run + `run.updated` event, or advance +
    `last_error`); one that fails unexpectedly is logged and the others go on.
    """
    now = now or utcnow()
    with session_factory() as session:
        due = session.execute(
            select(Schedule.id, Schedule.next_fire_at)
            .where(Schedule.enabled.is_(True), Schedule.next_fire_at <= now)
            .order_by(Schedule.next_fire_at, Schedule.id)
            .limit(batch_size)
        ).all()
        session.rollback()
    counts = {"fired": 0, "failed": 0, "skipped": 0}
    denied = global_denylist() if due else Denylist()
    for schedule_id, seen in due:
        try:
            with session_factory.begin() as session:
                outcome = _fire(session, schedule_id, seen, now, notify, denied)
        except Exception:  # one schedule's surprise must not stop the others
            _log.exception("schedule %s could not be dispatched", schedule_id)
            outcome = "failed"
        counts[outcome] += 1
    report = DispatchReport(**counts)
    if report.fired or report.failed:
        _log.info("schedules: %d runs queued, %d fires made no run", report.fired, report.failed)
    return report
