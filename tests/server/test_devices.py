from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from server.app import create_app
from server.auth import hash_token
from server.db import utcnow
from server.devices.models import PairingCode
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device
from tests.server.test_dashboard_support import sign_in

FACTS = {"serial": "R58M123", "model": "Pixel 7", "androidVersion": "14"}


def _code(client: TestClient, token: str) -> str:
    r = client.post("/api/v1/pairing-codes", headers=auth(token))
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


def test_pairing_gives_a_device_token(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    r = client.post("/api/v1/pairing-codes", headers=auth(acc.token))
    body = r.json()
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}", body["code"])
    assert body["expiresAt"]
    # people type codes in lower case with a dash in the middle
    typed = body["code"][:4].lower() + "-" + body["code"][4:]
    paired = client.post("/api/v1/devices/pair", json={"code": typed, **FACTS})
    assert paired.status_code == 201, paired.text
    token = paired.json()["token"]
    assert token.startswith("pf_dev_")
    beat = client.post("/api/v1/devices/me/heartbeat", headers=auth(token))
    assert beat.status_code == 200
    assert beat.json()["deviceId"] == paired.json()["deviceId"]
    (device,) = client.get("/api/v1/devices", headers=auth(acc.token)).json()
    assert device["serial"] == "R58M123"
    assert device["androidVersion"] == "14"
    assert device["lastSeenAt"] is not None


def test_used_and_expired_codes_say_which(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    code = _code(client, acc.token)
    assert client.post("/api/v1/devices/pair", json={"code": code, **FACTS}).status_code == 201
    used = client.post("/api/v1/devices/pair", json={"code": code, **FACTS})
    assert used.status_code == 409
    assert "already used" in used.json()["detail"]
    old = _code(client, acc.token)
    with db.session_factory.begin() as session:
        session.execute(
            update(PairingCode)
            .where(PairingCode.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = client.post("/api/v1/devices/pair", json={"code": old, **FACTS})
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    wrong = client.post("/api/v1/devices/pair", json={"code": "AAAAAAAA", **FACTS})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/code"


def test_wrong_codes_are_rate_limited_in_the_database(client: TestClient, db: Db, settings: Settings) -> None:
    acc = create_account(db)
    for _ in range(settings.pairing_max_failures):
        assert client.post("/api/v1/devices/pair", json={"code": "AAAAAAAA", **FACTS}).status_code == 422
    good = _code(client, acc.token)
    limited = client.post("/api/v1/devices/pair", json={"code": good, **FACTS})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "too many wrong pairing codes" in limited.json()["detail"]
    # another server process on the same database sees the same count
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        assert other.post("/api/v1/devices/pair", json={"code": good, **FACTS}).status_code == 429


def test_replaying_a_used_code_limits_that_address_not_the_account(db: Db, settings: Settings) -> None:
    acc = create_account(db)
    limited_settings = settings.model_copy(update={"pairing_max_failures": 2})
    app = create_app(limited_settings)
    with TestClient(app) as client, TestClient(app, client=("10.0.0.7", 50000)) as elsewhere:
        used = _code(client, acc.token)
        assert client.post("/api/v1/devices/pair", json={"code": used, **FACTS}).status_code == 201
        for _ in range(2):
            assert client.post("/api/v1/devices/pair", json={"code": used, **FACTS}).status_code == 409
        fresh = _code(client, acc.token)
        assert client.post("/api/v1/devices/pair", json={"code": fresh, **FACTS}).status_code == 429
        # the account's other phones still pair: a replay is no guess at the account's codes
        paired = elsewhere.post("/api/v1/devices/pair", json={"code": fresh, **FACTS, "serial": "S2"})
        assert paired.status_code == 201, paired.text


def test_concurrent_wrong_codes_pass_the_limit_exactly_as_often_as_allowed(
    client: TestClient, db: Db, settings: Settings
) -> None:
    with ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(
                lambda i: (
                    client.post("/api/v1/devices/pair", json={"code": f"WRONG{i:03d}", **FACTS}).status_code
                ),
                range(60),
            )
        )
    assert statuses.count(422) == settings.pairing_max_failures
    assert statuses.count(429) == 60 - settings.pairing_max_failures


def test_a_code_pairs_one_device_under_concurrent_redemption(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    code = _code(client, acc.token)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(
                lambda i: (
                    client.post(
                        "/api/v1/devices/pair", json={"code": code, **FACTS, "serial": f"S{i}"}
                    ).status_code
                ),
                range(4),
            )
        )
    assert sorted(statuses) == [201, 409, 409, 409]
    assert len(client.get("/api/v1/devices", headers=auth(acc.token)).json()) == 1


def test_rename_and_revoke(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    r = client.patch(f"/api/v1/devices/{dev.id}", json={"name": "Shelf phone"}, headers=auth(acc.token))
    assert r.json()["name"] == "Shelf phone"
    assert client.post("/api/v1/devices/me/heartbeat", headers=auth(dev.token)).status_code == 200
    revoked = client.post(f"/api/v1/devices/{dev.id}/revoke", headers=auth(acc.token))
    assert revoked.json()["revokedAt"] is not None
    refused = client.post("/api/v1/devices/me/heartbeat", headers=auth(dev.token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_device_scoping_and_token_kinds(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    bobs = create_device(db, bob.id)
    for method, path in (
        ("GET", f"/api/v1/devices/{bobs.id}"),
        ("PATCH", f"/api/v1/devices/{bobs.id}"),
        ("POST", f"/api/v1/devices/{bobs.id}/revoke"),
    ):
        body = {"name": "mine now"} if method == "PATCH" else None
        assert client.request(method, path, json=body, headers=auth(alice.token)).status_code == 404
    assert client.get("/api/v1/devices", headers=auth(bobs.token)).status_code == 401
    kind = client.post("/api/v1/devices/me/heartbeat", headers=auth(bob.token))
    assert kind.status_code == 401
    assert "device token" in kind.json()["detail"]


def test_pruning_drops_old_failures_and_spent_codes(client: TestClient, db: Db, settings: Settings) -> None:
    from server.devices.jobs import prune_pairing
    from server.devices.models import PairingFailure

    acc = create_account(db)
    fresh = _code(client, acc.token)
    old = _code(client, acc.token)
    assert client.post("/api/v1/devices/pair", json={"code": "AAAAAAAA", **FACTS}).status_code == 422
    with db.session_factory.begin() as session:
        session.add(PairingFailure(key="ip:old", created_at=utcnow() - timedelta(hours=2)))
        session.execute(
            update(PairingCode)
            .where(PairingCode.code_hash == hash_token(old))
            .values(expires_at=utcnow() - timedelta(days=2))
        )
    assert prune_pairing(db.session_factory, settings) == (1, 1)
    # the recent failure and the live code survive
    assert client.post("/api/v1/devices/pair", json={"code": fresh, **FACTS}).status_code == 201
    with db.session_factory() as session:
        assert [f.key for f in session.query(PairingFailure)] == ["ip:testclient"]


def test_the_bridge_health_of_a_heartbeat_shows_with_the_device(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id, name="Front desk")
    health = {
        "worker": "waiting for the device",
        "workerRestarts": 2,
        "lastWorkerError": "ValueError: the claim answer was not JSON",
        "lastWorkerErrorAt": "2026-11-29T10:00:00.000Z",
        "deviceProblem": "deviceInfo failed on device emulator-5554: ConnectionError",
        "uploaderRestarts": 0,
        "fromANewerBridge": True,
    }
    beat = client.post("/api/v1/devices/me/heartbeat", json={"bridge": health}, headers=auth(device.token))
    assert beat.status_code == 200, beat.text
    shown = client.get(f"/api/v1/devices/{device.id}", headers=auth(account.token)).json()["bridgeHealth"]
    expected = {key: value for key, value in health.items() if key != "fromANewerBridge"}
    assert shown == {**expected, "runInHand": None}
    # An old bridge's empty heartbeat keeps working and leaves the last health as it was.
    assert client.post("/api/v1/devices/me/heartbeat", json={}, headers=auth(device.token)).status_code == 200
    assert client.post("/api/v1/devices/me/heartbeat", headers=auth(device.token)).status_code == 200
    bad = client.post(
        "/api/v1/devices/me/heartbeat",
        json={"bridge": {"worker": "serving", "workerRestarts": -1}},
        headers=auth(device.token),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/bridge/workerRestarts"

    sign_in(client, account.token)
    page = client.get("/devices").text
    row = page.split(f'data-device-id="{device.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-bridge-health="waiting for the device"' in row
    assert "worker restarted 2×" in row
    assert "deviceInfo failed on device emulator-5554" in row
