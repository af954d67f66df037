"""Cron schedules: the API, crontab reading, and dispatch (one run per fire, across racing dispatchers)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from server.accounts.models import Account
from server.app import create_app
from server.db import utcnow
from server.errors import ValidationFailed
from server.runs.models import Run, RunEvent
from server.scheduler import build_scheduler
from server.schedules import service
from server.schedules.cron import first_fire_after, parse_cron
from server.schedules.models import Schedule
from server.settings import Settings
from server.workflows.models import Workflow
from tests.server.factories import (
    Db,
    DeviceFixture,
    WorkflowFixture,
    auth,
    create_account,
    create_device,
    create_workflow,
)

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)  # a Monday, winter (Paris is UTC+1)


def _create(client: TestClient, token: str, workflow_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/v1/workflows/{workflow_id}/schedules", json=body, headers=auth(token))


def _problems(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problems: list[dict[str, Any]] = answer.json()["errors"]
    return problems


def _schedule(
    db: Db,
    workflow: WorkflowFixture,
    device: DeviceFixture,
    cron: str = "*/5 * * * *",
    *,
    now: datetime = T0,
    **kwargs: Any,
) -> str:
    """A schedule made through the service as at `now`; its id."""
    with db.session_factory.begin() as session:
        account = session.get(Account, workflow.account_id)
        assert account is not None
        schedule = service.create_schedule(
            session, account, workflow.id, device_id=device.id, cron=cron, now=now, **kwargs
        )
        return schedule.id


def _row(db: Db, schedule_id: str) -> Schedule:
    with db.session_factory() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        return schedule


def _runs(db: Db) -> list[Run]:
    with db.session_factory() as session:
        return list(session.scalars(select(Run).order_by(Run.created_at)))


# --- the API -------------------------------------------------------------------------------------


def test_create_list_get_patch_and_delete(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    other_device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    other_workflow = create_workflow(db, account.id, name="Another")
    before = utcnow()

    created = _create(
        client, account.token, workflow.id, deviceId=device.id, cron="*/15 * * * *", inputs={"order": "A-1"}
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["workflowId"] == workflow.id
    assert schedule["deviceId"] == device.id
    assert (schedule["cron"], schedule["timezone"], schedule["enabled"]) == ("*/15 * * * *", "UTC", True)
    assert schedule["inputs"] == {"order": "A-1"}
    assert (schedule["lastFiredAt"], schedule["lastError"]) == (None, None)
    next_fire = datetime.fromisoformat(schedule["nextFireAt"].replace("Z", "+00:00"))
    assert before < next_fire <= before + timedelta(minutes=15)
    assert next_fire.minute % 15 == 0
    assert (next_fire.second, next_fire.microsecond) == (0, 0)
    _create(client, account.token, other_workflow.id, deviceId=device.id, cron="0 9 * * *")

    listed = client.get("/api/v1/schedules", headers=auth(account.token)).json()
    assert len(listed) == 2
    only = client.get(
        "/api/v1/schedules", params={"workflowId": workflow.id}, headers=auth(account.token)
    ).json()
    assert only == [schedule]
    read = client.get(f"/api/v1/schedules/{schedule['id']}", headers=auth(account.token))
    assert read.status_code == 200
    assert read.json() == schedule

    patched = client.patch(
        f"/api/v1/schedules/{schedule['id']}",
        json={"cron": "30 9 * * *", "timezone": "Europe/Paris", "deviceId": other_device.id},
        headers=auth(account.token),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["cron"], body["timezone"], body["deviceId"]) == (
        "30 9 * * *",
        "Europe/Paris",
        other_device.id,
    )
    assert body["inputs"] == {"order": "A-1"}  # not given: kept
    local = datetime.fromisoformat(body["nextFireAt"].replace("Z", "+00:00")).astimezone(
        ZoneInfo("Europe/Paris")
    )
    assert (local.hour, local.minute) == (9, 30)
    off = client.patch(
        f"/api/v1/schedules/{schedule['id']}", json={"enabled": False}, headers=auth(account.token)
    )
    assert off.json()["enabled"] is False
    assert off.json()["cron"] == "30 9 * * *"

    deleted = client.delete(f"/api/v1/schedules/{schedule['id']}", headers=auth(account.token))
    assert deleted.status_code == 204
    assert client.get(f"/api/v1/schedules/{schedule['id']}", headers=auth(account.token)).status_code == 404
    assert len(client.get("/api/v1/schedules", headers=auth(account.token)).json()) == 1


def test_bad_cron_timezone_and_inputs_are_422_with_pointers(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)

    minute = _problems(_create(client, account.token, workflow.id, deviceId=device.id, cron="61 * * * *"))
    assert [p["pointer"] for p in minute] == ["/cron"]
    assert "minute field '61'" in minute[0]["message"]
    assert "*/15 * * * *" in minute[0]["hint"]
    weekday = _problems(_create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * 9"))
    assert "day-of-week field '9'" in weekday[0]["message"]
    month = _problems(_create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * foo *"))
    assert "month field 'foo'" in month[0]["message"]
    count = _problems(_create(client, account.token, workflow.id, deviceId=device.id, cron="* * * *"))
    assert "5 fields, this one has 4" in count[0]["message"]
    never = _problems(_create(client, account.token, workflow.id, deviceId=device.id, cron="0 0 31 2 *"))
    assert "never fires" in never[0]["message"]

    zone = _problems(
        _create(
            client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *", timezone="Mars/Base"
        )
    )
    assert [p["pointer"] for p in zone] == ["/timezone"]
    assert "Mars/Base" in zone[0]["message"]
    both = _problems(
        _create(client, account.token, workflow.id, deviceId=device.id, cron="0 25 * * *", timezone="Nowhere")
    )
    assert sorted(p["pointer"] for p in both) == ["/cron", "/timezone"]
    assert any("hour field '25'" in p["message"] for p in both)

    inputs = _problems(
        _create(
            client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *", inputs={"order": 17}
        )
    )
    assert [p["pointer"] for p in inputs] == ["/inputs/order"]
    assert "17 is not of type 'string'" in inputs[0]["message"]
    unknown = _problems(
        _create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *", every="day")
    )
    assert [p["pointer"] for p in unknown] == ["/every"]

    created = _create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *").json()
    patch = client.patch(
        f"/api/v1/schedules/{created['id']}", json={"cron": "0 9 * *"}, headers=auth(account.token)
    )
    assert [p["pointer"] for p in _problems(patch)] == ["/cron"]
    # Nothing was made by the refusals.
    assert len(client.get("/api/v1/schedules", headers=auth(account.token)).json()) == 1


def test_device_and_publication_refusals(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    draft = create_workflow(db, account.id, publish=False)
    stranger = create_device(db, create_account(db).id)

    unpublished = _create(client, account.token, draft.id, deviceId=device.id, cron="0 9 * * *")
    assert unpublished.status_code == 409
    assert "no published version" in unpublished.json()["detail"]
    foreign = _create(client, account.token, workflow.id, deviceId=stranger.id, cron="0 9 * * *")
    assert foreign.status_code == 404
    assert "no device" in foreign.json()["detail"]

    created = _create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *").json()
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE devices SET revoked_at = :t WHERE id = :d"), {"t": utcnow(), "d": device.id}
        )
    revoked = _create(client, account.token, workflow.id, deviceId=device.id, cron="0 9 * * *")
    assert revoked.status_code == 409
    assert "revoked" in revoked.json()["detail"]
    # A schedule on the revoked device can be switched off, but not kept on or switched on.
    url = f"/api/v1/schedules/{created['id']}"
    assert client.patch(url, json={"cron": "0 10 * * *"}, headers=auth(account.token)).status_code == 409
    assert client.patch(url, json={"enabled": False}, headers=auth(account.token)).status_code == 200
    assert client.patch(url, json={"enabled": True}, headers=auth(account.token)).status_code == 409


def test_another_accounts_schedule_is_404(client: TestClient, db: Db) -> None:
    owner = create_account(db)
    device = create_device(db, owner.id)
    workflow = create_workflow(db, owner.id)
    schedule = _create(client, owner.token, workflow.id, deviceId=device.id, cron="0 9 * * *").json()

    intruder = create_account(db)
    url = f"/api/v1/schedules/{schedule['id']}"
    assert client.get(url, headers=auth(intruder.token)).status_code == 404
    assert client.patch(url, json={"enabled": False}, headers=auth(intruder.token)).status_code == 404
    assert client.delete(url, headers=auth(intruder.token)).status_code == 404
    assert client.get("/api/v1/schedules", headers=auth(intruder.token)).json() == []
    theirs = client.get(
        "/api/v1/schedules", params={"workflowId": workflow.id}, headers=auth(intruder.token)
    ).json()
    assert theirs == []
    own_device = create_device(db, intruder.id)
    on_theirs = _create(client, intruder.token, workflow.id, deviceId=own_device.id, cron="0 9 * * *")
    assert on_theirs.status_code == 404
    # Untouched.
    assert client.get(url, headers=auth(owner.token)).json() == schedule
    assert client.get("/api/v1/schedules", headers=auth(owner.token)).json() == [schedule]


# --- reading crontabs ----------------------------------------------------------------------------


def _next(cron: str, zone: str = "UTC", after: datetime = T0) -> datetime:
    return first_fire_after(cron, ZoneInfo(zone), after)


def test_crontab_reading_follows_cron() -> None:
    assert _next("*/15 * * * *") == T0 + timedelta(minutes=15)  # strictly after a slot
    assert _next("0 9 * * *", "Europe/Paris") == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    assert _next("0 9 * * *", "Europe/Paris", datetime(2026, 7, 1, tzinfo=UTC)).hour == 7  # summer time
    # Weekday numbers as crontab counts them: 0 and 7 are Sunday, 1 is Monday (T0 is a Monday).
    assert _next("0 9 * * 1") == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    assert _next("0 9 * * 0") == datetime(2026, 1, 11, 9, 0, tzinfo=UTC)
    assert _next("0 9 * * 7") == datetime(2026, 1, 11, 9, 0, tzinfo=UTC)
    assert _next("0 9 * * 6") == datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    assert _next("0 9 * * sat") == datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    assert _next("0 9 * * 2-4") == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)  # Tuesday
    assert _next("0 9 * * 5,6", after=datetime(2026, 1, 9, 10, tzinfo=UTC)) == datetime(
        2026, 1, 10, 9, 0, tzinfo=UTC
    )
    # Both day fields restricted: either one matching fires (the 20th is a Tuesday).
    assert _next("0 9 20 * 5", after=datetime(2026, 1, 17, tzinfo=UTC)) == datetime(
        2026, 1, 20, 9, tzinfo=UTC
    )
    assert _next("0 9 20 * 5") == datetime(2026, 1, 9, 9, tzinfo=UTC)  # the Friday before
    with pytest.raises(ValidationFailed):
        parse_cron("0 9 * * 8")


# --- dispatch ------------------------------------------------------------------------------------


def test_a_due_schedule_makes_one_queued_run_and_advances(db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device, inputs={"order": "A-1"})
    assert _row(db, schedule_id).next_fire_at == T0 + timedelta(minutes=5)

    early = service.dispatch_due_schedules(db.session_factory, now=T0 + timedelta(minutes=4))
    assert early == service.DispatchReport()
    assert _runs(db) == []

    now = T0 + timedelta(minutes=5, seconds=2)
    report = service.dispatch_due_schedules(db.session_factory, now=now)
    assert report == service.DispatchReport(fired=1)
    [run] = _runs(db)
    assert (run.status, run.trigger, run.device_id) == ("queued", "schedule", device.id)
    assert (run.workflow_id, run.workflow_version_id, run.inputs) == (
        workflow.id,
        workflow.version_id,
        {"order": "A-1"},
    )
    row = _row(db, schedule_id)
    assert row.next_fire_at == T0 + timedelta(minutes=10)
    assert row.last_fired_at == now
    assert row.last_error is None
    with db.session_factory() as session:
        [event] = session.scalars(select(RunEvent).where(RunEvent.run_id == run.id)).all()
    assert event.account_id == account.id
    assert (event.payload["status"], event.payload["trigger"]) == ("queued", "schedule")

    again = service.dispatch_due_schedules(db.session_factory, now=now)
    assert again == service.DispatchReport()
    assert len(_runs(db)) == 1


class _RacingFactory:
    """A session factory whose dispatcher waits, after reading the due schedules, until every other
    dispatcher has read them too: all of them then try to fire the same slots."""

    def __init__(self, factory: sessionmaker[Session], barrier: threading.Barrier) -> None:
        self._factory = factory
        self._barrier = barrier
        self._waited = False

    def __call__(self) -> Session:
        return self._factory()

    def begin(self) -> Any:
        if not self._waited:
            self._waited = True
            self._barrier.wait(timeout=30)
        return self._factory.begin()


def test_racing_dispatchers_make_exactly_one_run_per_fire(db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    ids = [_schedule(db, workflow, device) for _ in range(5)]
    now = T0 + timedelta(minutes=5)
    dispatchers = 3
    barrier = threading.Barrier(dispatchers)

    def dispatch(_: int) -> service.DispatchReport:
        factory = cast(sessionmaker[Session], _RacingFactory(db.session_factory, barrier))
        return service.dispatch_due_schedules(factory, now=now)

    with ThreadPoolExecutor(dispatchers) as pool:
        reports = list(pool.map(dispatch, range(dispatchers)))

    assert sum(r.fired for r in reports) == len(ids)
    assert sum(r.skipped for r in reports) == len(ids) * (dispatchers - 1)  # each saw every slot
    assert sum(r.failed for r in reports) == 0
    runs = _runs(db)
    assert len(runs) == len(ids)
    assert {r.trigger for r in runs} == {"schedule"}
    assert all(_row(db, i).next_fire_at == T0 + timedelta(minutes=10) for i in ids)


def test_the_conditional_update_refuses_a_slot_another_dispatcher_moved(db: Db) -> None:
    """The database decides, not the read before it: a slot advanced between this dispatcher's
    read and its UPDATE (by another process) makes no run here."""
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device)
    moved_to = T0 + timedelta(minutes=10)
    interloped = []

    def interlope(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE SCHEDULES") and not interloped:
            interloped.append(statement)  # first, so that the nested UPDATE passes through
            conn.execute(update(Schedule).where(Schedule.id == schedule_id).values(next_fire_at=moved_to))

    event.listen(db.engine, "before_cursor_execute", interlope)
    try:
        report = service.dispatch_due_schedules(db.session_factory, now=T0 + timedelta(minutes=5))
    finally:
        event.remove(db.engine, "before_cursor_execute", interlope)
    assert interloped
    assert report == service.DispatchReport(skipped=1)
    assert _runs(db) == []
    assert _row(db, schedule_id).next_fire_at == moved_to


def test_missed_fires_coalesce_into_one_run(db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device, "*/5 * * * *")
    # The server was down for three hours: 36 slots went by.
    now = T0 + timedelta(hours=3, minutes=1)
    assert service.dispatch_due_schedules(db.session_factory, now=now) == service.DispatchReport(fired=1)
    assert len(_runs(db)) == 1
    assert _row(db, schedule_id).next_fire_at == T0 + timedelta(hours=3, minutes=5)
    assert service.dispatch_due_schedules(db.session_factory, now=now).fired == 0


def test_a_revoked_device_records_last_error_and_makes_no_run(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device)
    healthy = _schedule(db, workflow, create_device(db, account.id))
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE devices SET revoked_at = :t WHERE id = :d"), {"t": T0, "d": device.id})

    now = T0 + timedelta(minutes=5)
    report = service.dispatch_due_schedules(db.session_factory, now=now)
    assert report == service.DispatchReport(fired=1, failed=1)
    [run] = _runs(db)
    assert run.device_id != device.id  # the other schedule still fired
    row = _row(db, schedule_id)
    assert row.enabled is True  # kept
    assert row.next_fire_at == T0 + timedelta(minutes=10)  # moved on
    assert row.last_fired_at is None
    assert row.last_error is not None
    assert "revoked" in row.last_error
    assert f"PATCH /api/v1/schedules/{schedule_id}" in row.last_error
    assert _row(db, healthy).last_error is None
    shown = client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).json()
    assert shown["lastError"] == row.last_error

    # Pointing it at a paired device clears the error; the next slot makes a run.
    other = create_device(db, account.id)
    fixed = client.patch(
        f"/api/v1/schedules/{schedule_id}", json={"deviceId": other.id}, headers=auth(account.token)
    ).json()
    assert fixed["lastError"] is None


def test_a_workflow_without_published_version_records_last_error(db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device)
    with db.session_factory.begin() as session:
        session.execute(update(Workflow).where(Workflow.id == workflow.id).values(published_version_id=None))

    report = service.dispatch_due_schedules(db.session_factory, now=T0 + timedelta(minutes=5))
    assert report == service.DispatchReport(failed=1)
    assert _runs(db) == []
    row = _row(db, schedule_id)
    assert row.last_error is not None
    assert "no published version" in row.last_error
    assert f"POST /api/v1/workflows/{workflow.id}/publish" in row.last_error
    assert row.next_fire_at == T0 + timedelta(minutes=10)


def test_disabled_schedules_never_fire(db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device, enabled=False)
    for minutes in (5, 60, 60 * 24):
        now = T0 + timedelta(minutes=minutes)
        assert service.dispatch_due_schedules(db.session_factory, now=now) == service.DispatchReport()
    assert _runs(db) == []
    assert _row(db, schedule_id).next_fire_at == T0 + timedelta(minutes=5)
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RunEvent)) == 0


def test_the_dispatch_job_is_registered_with_its_poll_interval(settings: Settings, db: Db) -> None:
    scheduler = build_scheduler(settings.model_copy(update={"schedule_poll_s": 2.5}), db.session_factory)
    job = scheduler.get_job("schedules.dispatch")
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=2.5)
    assert job.func is service.dispatch_due_schedules


def test_the_running_server_dispatches_a_due_schedule(settings: Settings, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    schedule_id = _schedule(db, workflow, device, now=utcnow() - timedelta(hours=1))  # long due
    app = create_app(settings.model_copy(update={"start_scheduler": True, "schedule_poll_s": 0.05}))
    dispatched = threading.Event()

    def on_job(job_event: Any) -> None:
        if job_event.job_id == "schedules.dispatch" and _runs(db):
            dispatched.set()

    with TestClient(app) as client:
        app.state.scheduler.add_listener(on_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        assert dispatched.wait(timeout=30), "the scheduler's dispatch job queued no run"
        shown = client.get(f"/api/v1/schedules/{schedule_id}", headers=auth(account.token)).json()
    [run] = _runs(db)
    assert (run.trigger, run.status) == ("schedule", "queued")
    assert shown["lastFiredAt"] is not None
    assert datetime.fromisoformat(shown["nextFireAt"].replace("Z", "+00:00")) > utcnow() - timedelta(
        seconds=1
    )
