"""Why a queued run waits: `GET /api/v1/runs/{id}` answers `waiting` (tests/browser/test_run_controls.py
sees the run page show it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from server.db import utcnow
from server.devices.models import Device
from server.runs.models import Run
from tests.server.factories import Db, auth, create_account, create_device, create_workflow


def _waiting(client: TestClient, token: str, run_id: str) -> dict[str, Any] | None:
    answer: dict[str, Any] | None = client.get(f"/api/v1/runs/{run_id}", headers=auth(token)).json()[
        "waiting"
    ]
    return answer


def _beat(client: TestClient, token: str, bridge: dict[str, Any] | None = None) -> None:
    body = {"bridge": bridge} if bridge else {}
    assert client.post("/api/v1/devices/me/heartbeat", json=body, headers=auth(token)).status_code == 200


def test_a_queued_run_says_why_it_waits(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id, name="Till 3")
    wf = create_workflow(db, acc.id)

    def trigger() -> str:
        body = {"deviceId": dev.id, "inputs": {}}
        return str(
            client.post(f"/api/v1/workflows/{wf.id}/runs", json=body, headers=auth(acc.token)).json()["id"]
        )

    first = trigger()
    with db.session_factory.begin() as session:  # paired, but no bridge has called in yet
        session.execute(update(Device).where(Device.id == dev.id).values(last_seen_at=None))
    waiting = _waiting(client, acc.token, first)
    assert waiting is not None
    assert waiting["reason"] == "no_bridge"
    assert "phoneflow bridge run" in waiting["message"]

    _beat(client, dev.token)
    assert _waiting(client, acc.token, first)["reason"] == "claiming"  # type: ignore[index]
    second = trigger()
    behind = _waiting(client, acc.token, second)
    assert behind is not None
    assert (behind["reason"], "1 earlier one(s) go first" in behind["message"]) == ("queued_behind", True)

    client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    assert _waiting(client, acc.token, first) is None  # running: it does not wait
    busy = _waiting(client, acc.token, second)
    assert busy is not None
    assert (busy["reason"], busy["runId"]) == ("device_busy", first)
    assert f"busy with run {first[:8]} (running)" in busy["message"]

    client.post(f"/api/v1/runs/{first}/cancel", headers=auth(acc.token))
    client.post(
        "/api/v1/runs.report",
        json={
            "runs": [
                {"id": first, "workflowId": wf.id, "workflowVersionId": wf.version_id, "status": "cancelled"}
            ]
        },
        headers=auth(dev.token),
    )
    _beat(
        client,
        dev.token,
        {"worker": "waiting for the device", "deviceProblem": "adb: device 'SER1' not found"},
    )
    unplugged = _waiting(client, acc.token, second)
    assert unplugged is not None
    assert unplugged["reason"] == "bridge_not_serving"
    assert "adb: device 'SER1' not found" in unplugged["message"]

    long_ago = utcnow() - timedelta(minutes=10)
    with db.session_factory.begin() as session:
        session.execute(update(Device).where(Device.id == dev.id).values(last_seen_at=long_ago))
    offline = _waiting(client, acc.token, second)
    assert offline is not None
    assert offline["reason"] == "device_offline"
    assert "Till 3 is offline since" in offline["message"]
    assert offline["since"] is not None

    with db.session_factory.begin() as session:
        session.execute(
            update(Run).where(Run.id == second).values(not_before=utcnow() + timedelta(minutes=1))
        )
    assert _waiting(client, acc.token, second)["reason"] == "backoff"  # type: ignore[index]

    client.post(f"/api/v1/devices/{dev.id}/revoke", headers=auth(acc.token))
    with db.session_factory.begin() as session:
        session.execute(update(Run).where(Run.id == second).values(not_before=None))
    assert _waiting(client, acc.token, second)["reason"] == "device_revoked"  # type: ignore[index]


def test_a_tag_run_says_whether_a_tagged_phone_is_online_and_free(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    phones = [create_device(db, acc.id) for _ in range(2)]
    wf = create_workflow(db, acc.id)
    with db.session_factory.begin() as session:
        session.execute(update(Device).where(Device.account_id == acc.id).values(last_seen_at=None))
    for phone in phones:
        client.put(f"/api/v1/devices/{phone.id}/tags", json={"tags": ["lab"]}, headers=auth(acc.token))
    body = {"deviceTag": "lab", "inputs": {}}
    run_id = client.post(f"/api/v1/workflows/{wf.id}/runs", json=body, headers=auth(acc.token)).json()["id"]
    assert _waiting(client, acc.token, run_id)["reason"] == "no_tagged_phone"  # type: ignore[index]

    _beat(client, phones[0].token)
    busy_run = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": phones[0].id, "inputs": {}},
        headers=auth(acc.token),
    ).json()["id"]
    assert (
        client.post("/api/v1/devices/me/claim", headers=auth(phones[0].token)).json()["run"]["id"] == busy_run
    )
    busy = _waiting(client, acc.token, run_id)
    assert busy is not None
    assert busy["reason"] == "tagged_phones_busy"
    _beat(client, phones[1].token)
    assert _waiting(client, acc.token, run_id)["reason"] == "claiming"  # type: ignore[index]
