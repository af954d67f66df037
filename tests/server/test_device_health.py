"""A phone's health in the heartbeat: stored, shown by the devices API, and `device.updated` in the
event log exactly when what a person sees changes (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from server.db import utcnow
from server.devices.health import DEVICE_UPDATED
from server.devices.models import Device
from server.runs.models import RunEvent
from tests.server.factories import Db, auth, create_account, create_device
from tests.server.runs_support import SseReader, serve_in_subprocess, serve_in_thread

PHONE = {
    "adbState": "device",
    "battery": 87,
    "charging": True,
    "screenOn": True,
    "foregroundApp": "com.example.shop",
    "runInHand": None,
    "checkedAt": "2026-11-29T12:00:00Z",
}
BRIDGE = {"worker": "serving", "workerRestarts": 0, "runInHand": None, "uploaderRestarts": 0}


def _device_events(db: Db, account_id: str) -> list[dict[str, Any]]:
    with db.session_factory() as session:
        rows = session.scalars(
            select(RunEvent.payload)
            .where(RunEvent.account_id == account_id, RunEvent.event == DEVICE_UPDATED)
            .order_by(RunEvent.id)
        )
        return list(rows)


def _beat(client: TestClient, token: str, **phone: Any) -> None:
    body = {"bridge": BRIDGE, "phone": {**PHONE, **phone}}
    response = client.post("/api/v1/devices/me/heartbeat", headers=auth(token), json=body)
    assert response.status_code == 200, response.text


def test_heartbeat_health_is_stored_and_shown(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    _beat(client, dev.token, runInHand="0d9a5c3e-1111-4222-8333-444455556666")
    (shown,) = client.get("/api/v1/devices", headers=auth(acc.token)).json()
    assert shown["online"] is True
    health = shown["phoneHealth"]
    assert health["adbState"] == "device"
    assert health["battery"] == 87
    assert health["charging"] is True
    assert health["screenOn"] is True
    assert health["foregroundApp"] == "com.example.shop"
    assert health["runInHand"] == "0d9a5c3e-1111-4222-8333-444455556666"
    one = client.get(f"/api/v1/devices/{dev.id}", headers=auth(acc.token)).json()
    assert one["phoneHealth"] == health

    # The phone is unplugged: the bridge still beats, but the device is not online.
    _beat(client, dev.token, adbState="gone", battery=None, charging=None, screenOn=None, foregroundApp=None)
    (shown,) = client.get("/api/v1/devices", headers=auth(acc.token)).json()
    assert shown["phoneHealth"]["adbState"] == "gone"
    assert shown["online"] is False


def test_device_updated_only_when_what_is_shown_changes(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    _beat(client, dev.token)
    _beat(client, dev.token, checkedAt="2026-11-29T12:00:10Z")  # the same health, a later check
    events = _device_events(db, acc.id)
    assert len(events) == 1, events
    assert events[0]["id"] == dev.id
    assert events[0]["online"] is True
    assert events[0]["phoneHealth"]["battery"] == 87

    _beat(client, dev.token, battery=86, charging=False)
    _beat(client, dev.token, adbState="offline")
    events = _device_events(db, acc.id)
    assert [e["phoneHealth"]["battery"] for e in events[1:]] == [86, 87]
    assert events[1]["phoneHealth"]["charging"] is False
    assert events[2]["phoneHealth"]["adbState"] == "offline"
    assert events[2]["online"] is False

    # A heartbeat after a long silence says the device is back, even with nothing else new.
    with db.session_factory.begin() as session:
        session.execute(
            update(Device).where(Device.id == dev.id).values(last_seen_at=utcnow() - timedelta(minutes=5))
        )
    _beat(client, dev.token, adbState="offline")
    assert len(_device_events(db, acc.id)) == 4

    # Another account's subscribers hear nothing of it.
    other = create_account(db)
    assert _device_events(db, other.id) == []


def test_health_from_a_bridge_is_bounded(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    bad = client.post(
        "/api/v1/devices/me/heartbeat",
        headers=auth(dev.token),
        json={"phone": {**PHONE, "battery": 250}},
    )
    assert bad.status_code == 422
    assert "battery" in bad.text
    # An older bridge that sends no phone health still beats; the device is online.
    assert client.post("/api/v1/devices/me/heartbeat", headers=auth(dev.token)).status_code == 200
    (shown,) = client.get("/api/v1/devices", headers=auth(acc.token)).json()
    assert shown["phoneHealth"] is None
    assert shown["online"] is True


def test_device_updated_reaches_subscribers_of_another_server_process(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    with serve_in_thread(app) as here, serve_in_subprocess(db.url) as there:
        reader = SseReader(here, acc.token)
        try:
            reader.wait_subscribed()
            started = time.monotonic()
            body = {"bridge": BRIDGE, "phone": {**PHONE, "adbState": "gone", "battery": None}}
            beat = httpx.post(f"{there}/api/v1/devices/me/heartbeat", headers=auth(dev.token), json=body)
            assert beat.status_code == 200, beat.text
            event = reader.next(timeout_s=5)
            assert event["event"] == DEVICE_UPDATED
            data = json.loads(event["data"])
            assert data["id"] == dev.id
            assert data["online"] is False
            assert data["phoneHealth"]["adbState"] == "gone"
            assert time.monotonic() - started < 1.5  # the tail polls every 0.5 s
        finally:
            reader.close()
