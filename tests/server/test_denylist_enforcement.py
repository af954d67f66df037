"""The effective denylist reaches the device (claim, heartbeat, config, gate) with a version, and a
stored version that names a package denied since it was saved is refused at trigger, schedule-fire
and claim time."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.accounts.models import Account
from server.app import create_app
from server.denylist.service import denylist_version
from server.schedules import service as schedules
from server.settings import Settings
from server.webhooks.models import WebhookDelivery
from tests.server.factories import Db, auth, create_account, create_device, create_workflow, sample_definition
from tests.server.test_dashboard_support import sign_in
from tests.server.test_schedules import T0, _row, _runs

GLOBAL = ["com.bank.*", "com.evil.app"]  # the test server's global file (conftest.denylist_file)
MAPS = "com.example.maps"
# The sample definition plus a node that opens the maps app (allowed when the version is saved).
WITH_MAPS = sample_definition(
    targetPackages=["com.example.shop", MAPS],
    nodes=[
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}, "next": "maps"},
        {"id": "maps", "kind": "action.launchApp", "params": {"package": MAPS}},
    ],
)


def _config(client: TestClient, token: str) -> dict[str, object]:
    answer = client.get("/api/v1/devices/me/config", headers=auth(token))
    assert answer.status_code == 200, answer.text
    denylist: dict[str, object] = answer.json()["denylist"]
    return denylist


def _deny(client: TestClient, token: str, pattern: str) -> str:
    added = client.post("/api/v1/denylist", json={"pattern": pattern}, headers=auth(token))
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def test_the_device_gets_the_effective_list_and_a_version_that_follows_every_change(
    client: TestClient, db: Db, settings: Settings, denylist_file: Path
) -> None:
    account, other = create_account(db), create_account(db)
    device = create_device(db, account.id)
    other_device = create_device(db, other.id)

    first = _config(client, device.token)
    assert first == {"patterns": GLOBAL, "version": denylist_version(GLOBAL)}
    heartbeat = client.post("/api/v1/devices/me/heartbeat", headers=auth(device.token)).json()
    assert heartbeat["denylistVersion"] == first["version"]

    entry_id = _deny(client, account.token, "com.example.*")
    second = _config(client, device.token)
    assert second["patterns"] == ["com.bank.*", "com.evil.app", "com.example.*"]
    assert second["version"] != first["version"]
    assert _config(client, other_device.token) == first  # another account's entry does not count
    heartbeat = client.post("/api/v1/devices/me/heartbeat", headers=auth(device.token)).json()
    assert heartbeat["denylistVersion"] == second["version"]

    # Another server process on the same database computes the same version.
    with TestClient(create_app(settings), raise_server_exceptions=False) as other_process:
        assert _config(other_process, device.token) == second

    # Removing the entry gives the first version back; editing the global file changes it at once.
    assert client.delete(f"/api/v1/denylist/{entry_id}", headers=auth(account.token)).status_code == 204
    assert _config(client, device.token) == first
    denylist_file.write_text("com.bank.*\ncom.evil.app\ncom.casino.*\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(denylist_file, (later, later))  # a new mtime, even on a coarse-grained file system
    third = _config(client, device.token)
    assert third["patterns"] == ["com.bank.*", "com.casino.*", "com.evil.app"]
    assert third["version"] not in (first["version"], second["version"])

    assert client.get("/api/v1/devices/me/config", headers=auth(account.token)).status_code == 401


def test_the_gate_answers_cancel_and_denylist_version_for_the_devices_own_runs(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device, stranger = create_device(db, account.id), create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device.id}, headers=auth(account.token)
    ).json()["id"]
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token)).json()
    assert claimed["run"]["id"] == run_id
    assert claimed["denylist"] == _config(client, device.token)

    gate = f"/api/v1/devices/me/runs/{run_id}/gate"
    answer = client.post(gate, headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "running",
        "cancelRequested": False,
        "paused": False,
        "denylistVersion": claimed["denylist"]["version"],
        "live": False,
        "acceptsReport": True,
        "grantsLease": True,
    }
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(account.token)).status_code == 200
    _deny(client, account.token, "com.other.*")
    answer = client.post(gate, headers=auth(device.token)).json()
    assert answer["cancelRequested"] is True
    now_version = _config(client, device.token)["version"]
    assert answer["denylistVersion"] == now_version != claimed["denylist"]["version"]

    refused = client.post(gate, headers=auth(stranger.token))
    assert refused.status_code == 404
    assert "this device has no run" in refused.json()["detail"]
    assert client.post(gate, headers=auth(account.token)).status_code == 401


def test_a_version_denied_since_it_was_saved_is_refused_at_trigger_time(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, definition=WITH_MAPS)
    trigger = f"/api/v1/workflows/{workflow.id}/runs"
    assert client.post(trigger, json={"deviceId": device.id}, headers=auth(account.token)).status_code == 201

    entry_id = _deny(client, account.token, "com.example.m*")
    refused = client.post(trigger, json={"deviceId": device.id}, headers=auth(account.token))
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert [e["pointer"] for e in problem["errors"]] == ["/targetPackages/1", "/nodes/1/params/package"]
    error = problem["errors"][1]
    assert "names com.example.maps at /nodes/1/params/package (node 'maps')" in error["message"]
    assert "denylist entry 'com.example.m*'" in error["message"]
    assert "publish a version without it" in error["hint"]
    assert f"DELETE /api/v1/denylist/{entry_id}" in error["hint"]
    assert "(and 1 more)" in problem["detail"]

    # The dashboard's Run button says the same.
    csrf = sign_in(client, account.token)
    page = client.post(
        f"/workflows/{workflow.id}/runs", data={"csrf_token": csrf, "device_id": device.id, "inputs": "{}"}
    )
    assert page.status_code == 409
    assert "names com.example.maps at /targetPackages/1" in page.text

    # A global entry says who can lift it.
    denied = create_workflow(db, account.id, definition=sample_definition(targetPackages=["com.bank.app"]))
    refused = client.post(
        f"/api/v1/workflows/{denied.id}/runs", json={"deviceId": device.id}, headers=auth(account.token)
    )
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["pointer"] == "/targetPackages/0"
    assert "PHONEFLOW_DENYLIST_FILE" in refused.json()["errors"][0]["hint"]


def test_a_queued_run_of_a_denied_version_fails_at_claim_and_the_next_run_is_handed_out(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    denied = create_workflow(db, account.id, definition=WITH_MAPS)
    fine = create_workflow(db, account.id)

    def trigger(workflow_id: str) -> str:
        answer = client.post(
            f"/api/v1/workflows/{workflow_id}/runs", json={"deviceId": device.id}, headers=auth(account.token)
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    first, second, good = trigger(denied.id), trigger(denied.id), trigger(fine.id)
    entry_id = _deny(client, account.token, MAPS)
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/failed", "events": ["run.failed"]},
        headers=auth(account.token),
    )
    assert hook.status_code == 201, hook.text
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token))
    assert claimed.status_code == 200
    assert claimed.json()["run"]["id"] == good
    for run_id in (first, second):
        run = client.get(f"/api/v1/runs/{run_id}", headers=auth(account.token)).json()
        assert run["status"] == "failed"
        assert run["errorMessage"].startswith("not started: version 1 of workflow")
        assert "names com.example.maps at /targetPackages/1 (targetPackages)" in run["errorMessage"]
        assert "remove 'com.example.maps' from the account's denylist" in run["errorMessage"]
        assert run["trace"] == []
    assert client.post("/api/v1/devices/me/claim", headers=auth(device.token)).status_code == 204
    # They ended as any failed run ends: counted in the analytics, their run.failed webhooks enqueued.
    today = client.get("/api/v1/stats?days=1", headers=auth(account.token)).json()["perDay"][-1]
    assert today["counts"].get("failed") == 2, today
    with db.session_factory() as session:
        keys = session.scalars(select(WebhookDelivery.event_key)).all()
    assert sorted(keys) == sorted(f"run.failed:{run_id}" for run_id in (first, second))

    # Queued before the entry came back: failed at claim, nothing handed out.
    assert client.delete(f"/api/v1/denylist/{entry_id}", headers=auth(account.token)).status_code == 204
    only_denied = trigger(denied.id)
    _deny(client, account.token, MAPS)
    assert client.post("/api/v1/devices/me/claim", headers=auth(device.token)).status_code == 204
    run = client.get(f"/api/v1/runs/{only_denied}", headers=auth(account.token)).json()
    assert run["status"] == "failed"


def test_a_schedule_fire_of_a_denied_version_records_why_in_last_error(
    client: TestClient, db: Db, settings: Settings
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, definition=WITH_MAPS)
    with db.session_factory.begin() as session:
        owner = session.get(Account, account.id)
        assert owner is not None
        schedule_id = schedules.create_schedule(
            session, owner, workflow.id, device_id=device.id, cron="*/5 * * * *", now=T0
        ).id
    _deny(client, account.token, "com.example.maps")
    report = schedules.dispatch_due_schedules(
        db.session_factory,
        now=T0 + timedelta(minutes=5),
        global_denylist=lambda: settings.global_denylist,
    )
    assert (report.fired, report.failed) == (0, 1)
    assert _runs(db) == []
    last_error = _row(db, schedule_id).last_error or ""
    assert "names com.example.maps at /targetPackages/1 (targetPackages)" in last_error
    assert "denylist entry 'com.example.maps'" in last_error
    assert "publish a version without it" in last_error
    assert "keeps firing at its next slot" in last_error


def test_a_schedule_of_a_denied_version_cannot_be_made_or_switched_on(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id, definition=WITH_MAPS)
    made = client.post(
        f"/api/v1/workflows/{workflow.id}/schedules",
        json={"deviceId": device.id, "cron": "*/5 * * * *", "enabled": False},
        headers=auth(account.token),
    )
    assert made.status_code == 201, made.text
    _deny(client, account.token, "com.example.maps")
    refused = client.post(
        f"/api/v1/workflows/{workflow.id}/schedules",
        json={"deviceId": device.id, "cron": "*/5 * * * *"},
        headers=auth(account.token),
    )
    assert refused.status_code == 409, refused.text
    assert "/targetPackages/1" in [e["pointer"] for e in refused.json()["errors"]]
    assert "publish a version without it" in refused.json()["detail"]
    switched_on = client.patch(
        f"/api/v1/schedules/{made.json()['id']}", json={"enabled": True}, headers=auth(account.token)
    )
    assert switched_on.status_code == 409, switched_on.text
    # a global entry (the server's file) counts as much as the account's
    banking = {**WITH_MAPS, "targetPackages": ["com.bank.app"]}
    global_denied = create_workflow(db, account.id, name="Bank", definition=banking)
    refused_global = client.post(
        f"/api/v1/workflows/{global_denied.id}/schedules",
        json={"deviceId": device.id, "cron": "*/5 * * * *"},
        headers=auth(account.token),
    )
    assert refused_global.status_code == 409, refused_global.text


def test_a_tag_claim_reads_the_accounts_entries_with_the_device(client: TestClient, db: Db) -> None:
    # The claim reads the device and the account's entries in one statement: the list it hands out and
    # the refusal of a denied tag run (which names the entry to delete) are those of the account's rows.
    account, other = create_account(db), create_account(db)
    device = create_device(db, account.id)
    assert client.put(
        f"/api/v1/devices/{device.id}/tags", json={"tags": ["lab"]}, headers=auth(account.token)
    ).is_success
    denied = create_workflow(db, account.id, definition=WITH_MAPS)
    fine = create_workflow(db, account.id)
    runs = [
        client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceTag": "lab"}, headers=auth(account.token)
        ).json()["id"]
        for wf in (denied, fine)
    ]
    _deny(client, other.token, "org.other.*")  # another account's entry counts for nobody here
    _deny(client, account.token, "org.zeta.app")
    entry_id = _deny(client, account.token, MAPS)
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["run"]["id"] == runs[1]
    patterns = sorted([*GLOBAL, MAPS, "org.zeta.app"])
    assert claimed.json()["denylist"] == {"version": denylist_version(patterns), "patterns": patterns}
    failed = client.get(f"/api/v1/runs/{runs[0]}", headers=auth(account.token)).json()
    assert (failed["status"], failed["deviceId"]) == ("failed", device.id)
    assert f"DELETE /api/v1/denylist/{entry_id}" in failed["errorMessage"]
