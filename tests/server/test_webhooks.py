"""Outgoing webhooks against a real HTTP receiver on 127.0.0.1: the endpoints API, Standard Webhooks
signatures checked by hand, each event enqueued once, retries with backoff across a restart,
giving up and redelivery, approval.waiting and device.offline, the delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from server.app import create_app
from server.db import utcnow
from server.devices.models import Device
from server.settings import Settings
from server.webhooks.delivery import deliver_due
from server.webhooks.events import notice_offline_devices
from server.webhooks.models import WebhookDelivery
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report
from tests.server.webhook_receiver import signature_is_valid, webhook_receiver


def _endpoint(client: TestClient, token: str, url: str, events: list[str]) -> dict[str, Any]:
    answer = client.post("/api/v1/webhooks", json={"url": url, "events": events}, headers=auth(token))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _deliver(app: FastAPI, settings: Settings, **kwargs: Any) -> None:
    deliver_due(app.state.session_factory, settings, **kwargs)


def test_the_endpoints_api(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    made = _endpoint(
        client, acc.token, "https://example.com/hooks", ["run.failed", "run.finished", "run.failed"]
    )
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["run.failed", "run.finished"]
    assert made["enabled"] is True
    listed = client.get("/api/v1/webhooks", headers=auth(acc.token)).json()
    assert [e["id"] for e in listed] == [made["id"]]
    assert "secret" not in listed[0] or listed[0]["secret"] is None
    secret = client.get(f"/api/v1/webhooks/{made['id']}/secret", headers=auth(acc.token)).json()["secret"]
    assert secret == made["secret"]
    rotated = client.post(f"/api/v1/webhooks/{made['id']}/secret/rotate", headers=auth(acc.token)).json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != secret

    bad = client.post(
        "/api/v1/webhooks",
        json={"url": "ftp://x", "events": ["run.done", "run.failed"]},
        headers=auth(acc.token),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/url"
    assert "https://" in bad.json()["errors"][0]["hint"]
    events_bad = client.post(
        "/api/v1/webhooks", json={"url": "https://x.example", "events": ["run.done"]}, headers=auth(acc.token)
    )
    assert events_bad.status_code == 422
    assert events_bad.json()["errors"][0]["pointer"] == "/events/0"
    assert "run.finished" in events_bad.json()["errors"][0]["hint"]

    patched = client.patch(
        f"/api/v1/webhooks/{made['id']}",
        json={"enabled": False, "events": ["device.offline"]},
        headers=auth(acc.token),
    ).json()
    assert (patched["enabled"], patched["events"]) == (False, ["device.offline"])
    assert client.get(f"/api/v1/webhooks/{made['id']}", headers=auth(other.token)).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=auth(other.token)).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=auth(acc.token)).status_code == 204
    assert client.get("/api/v1/webhooks", headers=auth(acc.token)).json() == []


@pytest.mark.private_targets
def test_runs_that_end_are_signed_delivered_once_and_logged(
    client: TestClient, app: FastAPI, settings: Settings, db: Db
) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id, name="Front desk")
    wf = create_workflow(db, acc.id, name="Capture order")
    with webhook_receiver() as receiver:
        finished = _endpoint(client, acc.token, receiver.url, ["run.finished"])
        failed = _endpoint(client, acc.token, receiver.url + "/failed", ["run.failed"])
        ok_run, bad_run, running = new_run_id(), new_run_id(), new_run_id()
        reports = [
            run_report(ok_run, wf, status="success", steps=2),
            run_report(bad_run, wf, status="failed", steps=1),
            run_report(running, wf, status="running", steps=1),
        ]
        client.post("/api/v1/runs.report", json={"runs": reports}, headers=auth(dev.token))
        # The same final reports again (a bridge retrying): nothing more is enqueued.
        client.post("/api/v1/runs.report", json={"runs": reports[:2]}, headers=auth(dev.token))
        _deliver(app, settings)
        got = receiver.wait_for(3)
        _deliver(app, settings)  # nothing is due any more
        assert len(receiver.received) == 3

    by_path: dict[str, list[Any]] = {}
    for item in got:
        by_path.setdefault(item.path, []).append(item)
        secret = finished["secret"] if item.path == "/hooks" else failed["secret"]
        assert signature_is_valid(secret, item), item.headers
        assert not signature_is_valid(failed["secret"] if item.path == "/hooks" else finished["secret"], item)
        assert item.headers["content-type"] == "application/json"
        assert item.headers["webhook-id"].startswith("msg_")
    finished_runs = {item.json()["data"]["run"]["id"]: item.json() for item in by_path["/hooks"]}
    assert set(finished_runs) == {ok_run, bad_run}
    document = finished_runs[bad_run]
    assert document["type"] == "run.finished"
    assert document["data"]["run"]["status"] == "failed"
    assert document["data"]["workflowName"] == "Capture order"
    assert document["data"]["deviceName"] == "Front desk"
    assert document["data"]["dashboardUrl"] == f"{settings.public_url}/runs/{bad_run}"
    [failure] = by_path["/hooks/failed"]
    assert failure.json()["type"] == "run.failed"
    assert failure.json()["data"]["run"]["id"] == bad_run

    log = client.get(f"/api/v1/webhooks/{finished['id']}/deliveries", headers=auth(acc.token)).json()
    assert len(log) == 2
    assert {entry["status"] for entry in log} == {"succeeded"}
    assert {entry["lastStatusCode"] for entry in log} == {200}
    assert log[0]["lastResponse"] == "thanks"
    one = client.get(f"/api/v1/webhooks/deliveries/{log[0]['id']}", headers=auth(acc.token)).json()
    assert [a["statusCode"] for a in one["attemptLog"]] == [200]
    assert one["id"] in {item.headers["webhook-id"] for item in got}


@pytest.mark.private_targets
def test_retries_back_off_survive_a_restart_give_up_and_redeliver(settings: Settings, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    settings = settings.model_copy(update={"webhook_retry_base_s": 60, "webhook_max_attempts": 3})
    with webhook_receiver() as receiver:
        receiver.answer_next((500, "boom: database down"), (503, "still down"))
        first_app = create_app(settings)
        with TestClient(first_app) as client:
            endpoint = _endpoint(client, acc.token, receiver.url, ["run.finished"])
            run_id = new_run_id()
            client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(run_id, wf, status="success", steps=1)]},
                headers=auth(dev.token),
            )
            _deliver(first_app, settings)
            receiver.wait_for(1)
        delivery = _one_delivery(db)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        assert delivery.next_attempt_at is not None
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()  # type: ignore[operator]
        assert 54 <= wait <= 66  # 60 s ± 10 %

        # A restarted server (a new app, a new engine on the same database) goes on where it was.
        second_app = create_app(settings)
        with TestClient(second_app) as client:
            _deliver(second_app, settings)  # not due yet
            assert len(receiver.received) == 1
            _deliver(second_app, settings, now=utcnow() + timedelta(seconds=70))
            receiver.wait_for(2)
            delivery = _one_delivery(db)
            assert (delivery.attempts, delivery.last_status_code) == (2, 503)
            wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()  # type: ignore[operator]
            assert 108 <= wait <= 132  # doubled: 120 s ± 10 %
            receiver.answer_next((500, "no"))
            _deliver(second_app, settings, now=utcnow() + timedelta(seconds=200))
            receiver.wait_for(3)
            delivery = _one_delivery(db)
            assert (delivery.status, delivery.attempts) == ("failed", 3)  # webhook_max_attempts
            _deliver(second_app, settings, now=utcnow() + timedelta(days=1))
            assert len(receiver.received) == 3  # given up: nothing more is sent

            log = client.get(f"/api/v1/webhooks/deliveries/{delivery.id}", headers=auth(acc.token)).json()
            assert [(a["statusCode"], a["response"]) for a in log["attemptLog"]] == [
                (500, "boom: database down"),
                (503, "still down"),
                (500, "no"),
            ]
            again = client.post(
                f"/api/v1/webhooks/deliveries/{delivery.id}/redeliver", headers=auth(acc.token)
            )
            assert again.status_code == 202
            assert again.json()["status"] == "pending"
            _deliver(second_app, settings)
            fourth = receiver.wait_for(4)[3]
            assert fourth.headers["webhook-id"] == delivery.id  # the same message, sent again
            assert signature_is_valid(endpoint["secret"], fourth)
            assert _one_delivery(db).status == "succeeded"


def _one_delivery(db: Db) -> WebhookDelivery:
    with db.session_factory() as session:
        return session.scalars(select(WebhookDelivery)).one()


@pytest.mark.private_targets
def test_unreachable_and_refused_targets_are_attempts_that_say_why(
    client: TestClient, app: FastAPI, settings: Settings, db: Db
) -> None:
    acc = create_account(db)
    closed = _endpoint(client, acc.token, "http://127.0.0.1:9/nothing-listens", ["run.finished"])
    client.post(f"/api/v1/webhooks/{closed['id']}/test", headers=auth(acc.token))
    _deliver(app, settings)
    [delivery] = client.get(f"/api/v1/webhooks/{closed['id']}/deliveries", headers=auth(acc.token)).json()
    assert delivery["eventType"] == "webhook.test"
    assert delivery["status"] == "pending"  # to be tried again
    assert delivery["lastStatusCode"] is None
    assert "ConnectError" in delivery["lastError"]

    strict = settings.model_copy(update={"webhook_allow_private_targets": False})
    client.post(f"/api/v1/webhooks/{closed['id']}/test", headers=auth(acc.token))
    _deliver(app, strict)
    newest = client.get(f"/api/v1/webhooks/{closed['id']}/deliveries", headers=auth(acc.token)).json()[0]
    assert "127.0.0.1" in newest["lastError"]
    assert "PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS" in newest["lastError"]


@pytest.mark.private_targets
def test_approval_waiting_and_device_offline(
    client: TestClient, app: FastAPI, settings: Settings, db: Db
) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id, name="Back office"), create_workflow(db, acc.id)
    with webhook_receiver() as receiver:
        endpoint = _endpoint(client, acc.token, receiver.url, ["approval.waiting", "device.offline"])
        run_id = new_run_id()
        client.post(
            "/api/v1/runs.report", json={"runs": [run_report(run_id, wf, steps=1)]}, headers=auth(dev.token)
        )
        asked = {"runId": run_id, "nodeId": "ask", "visit": 1, "message": "Refund 40 EUR?", "timeoutS": 600}
        for _ in range(2):  # the bridge asks again: the same approval, one event
            answer = client.post("/api/v1/devices/me/approvals", json=asked, headers=auth(dev.token))
            assert answer.status_code in (200, 201), answer.text
        _deliver(app, settings)
        [waiting] = receiver.wait_for(1)
        assert signature_is_valid(endpoint["secret"], waiting)
        document = waiting.json()
        assert document["type"] == "approval.waiting"
        assert document["data"]["approval"]["message"] == "Refund 40 EUR?"
        assert document["data"]["approval"]["status"] == "pending"
        assert document["data"]["run"]["id"] == run_id

        # The device falls silent for longer than device_offline_after_s: told once.
        silent_since = utcnow() - timedelta(seconds=settings.device_offline_after_s + 60)
        _set_last_seen(db, dev.id, silent_since)
        factory = app.state.session_factory
        assert notice_offline_devices(factory, settings) == 1
        assert notice_offline_devices(factory, settings) == 0  # the same silence
        _deliver(app, settings)
        offline = receiver.wait_for(2)[1]
        assert offline.json()["type"] == "device.offline"
        assert offline.json()["data"]["device"]["name"] == "Back office"
        # Heard from again, then silent again: a new silence, told again.
        client.post("/api/v1/devices/me/heartbeat", headers=auth(dev.token))
        assert notice_offline_devices(factory, settings) == 0
        _set_last_seen(db, dev.id, silent_since + timedelta(seconds=30))
        assert notice_offline_devices(factory, settings) == 1


def _set_last_seen(db: Db, device_id: str, moment: Any) -> None:
    with db.session_factory.begin() as session:
        session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=moment))
