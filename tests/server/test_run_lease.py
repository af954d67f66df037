"""Run leases: a bridge that asks gets a lease from the step gate and starts steps without asking
until it runs out; a cancel, a pause or a denied package is answered only once no lease can still
let a step start."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server.factories import (
    AccountFixture,
    Db,
    DeviceFixture,
    auth,
    create_account,
    create_device,
    create_workflow,
)

LEASE_S = 0.6


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"run_lease_s": LEASE_S})


def _running_run(
    client: TestClient, db: Db, claim: dict[str, object] | None = None
) -> tuple[AccountFixture, DeviceFixture, str]:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device.id}, headers=auth(account.token)
    ).json()["id"]
    claimed = client.post("/api/v1/devices/me/claim", json=claim, headers=auth(device.token))
    assert claimed.status_code == 200
    assert claimed.json()["grantsLease"] is (client.app.state.settings.run_lease_s > 0)  # type: ignore[attr-defined]
    assert ("leaseMs" in claimed.json()) == bool(claim and claim.get("lease"))
    return account, device, run_id


def _gate(client: TestClient, device: DeviceFixture, run_id: str, *, lease: bool = True) -> dict[str, object]:
    answer = client.post(
        f"/api/v1/devices/me/runs/{run_id}/gate",
        json={"seq": 1, "nodeId": "n1", "lease": lease},
        headers=auth(device.token),
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _timed_post(client: TestClient, path: str, token: str, **kwargs: object) -> tuple[float, int]:
    started = time.monotonic()
    status = client.post(path, headers=auth(token), **kwargs).status_code  # type: ignore[arg-type]
    return time.monotonic() - started, status


def test_the_gate_grants_a_lease_to_a_running_run_that_asks(client: TestClient, db: Db) -> None:
    account, device, run_id = _running_run(client, db)
    plain = _gate(client, device, run_id, lease=False)
    assert plain["grantsLease"] is True
    assert "leaseMs" not in plain
    assert _gate(client, device, run_id)["leaseMs"] == int(LEASE_S * 1000)

    assert client.post(f"/api/v1/runs/{run_id}/pause", headers=auth(account.token)).status_code == 200
    paused = _gate(client, device, run_id)
    assert (paused["paused"], "leaseMs" in paused) == (True, False)
    assert client.post(f"/api/v1/runs/{run_id}/resume", headers=auth(account.token)).status_code == 200
    assert "leaseMs" in _gate(client, device, run_id)
    time.sleep(LEASE_S)  # let that lease run out: the cancel answers at once
    elapsed, status = _timed_post(client, f"/api/v1/runs/{run_id}/cancel", account.token)
    assert status == 200
    assert elapsed < LEASE_S / 2
    cancelled = _gate(client, device, run_id)
    assert (cancelled["cancelRequested"], "leaseMs" in cancelled) == (True, False)


@pytest.mark.parametrize(("control", "by"), [("cancel", "gate"), ("pause", "gate"), ("cancel", "claim")])
def test_a_cancel_or_pause_answers_only_once_the_lease_has_run_out(
    client: TestClient, db: Db, control: str, by: str
) -> None:
    granted_at = time.monotonic()
    account, device, run_id = _running_run(client, db, {"lease": by == "claim"})
    if by == "gate":
        granted_at = time.monotonic()
        assert "leaseMs" in _gate(client, device, run_id)
    _, status = _timed_post(client, f"/api/v1/runs/{run_id}/{control}", account.token)
    answered_after = time.monotonic() - granted_at
    assert status == 200
    # The bridge counts its lease from before its ask: by the answer, it has run out on both clocks.
    assert answered_after >= LEASE_S
    assert "leaseMs" not in _gate(client, device, run_id)  # and no new one is granted


def test_a_gate_that_tells_the_bridge_of_the_cancel_ends_the_wait(settings: Settings, db: Db) -> None:
    long_lease = settings.model_copy(update={"run_lease_s": 8.0})
    with TestClient(create_app(long_lease), raise_server_exceptions=False) as client:
        account, device, run_id = _running_run(client, db)
        assert _gate(client, device, run_id)["leaseMs"] == 8000
        answered: list[float] = []

        def cancel() -> None:
            answered.append(_timed_post(client, f"/api/v1/runs/{run_id}/cancel", account.token)[0])

        waiting = threading.Thread(target=cancel)
        waiting.start()
        deadline = time.monotonic() + 5
        while True:  # the bridge's next gate (a long step announced) hears the cancel
            told = _gate(client, device, run_id)
            if told["cancelRequested"] is True or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        waiting.join(timeout=5)
        assert told["cancelRequested"] is True
        assert answered, "the cancel did not answer"
        assert answered[0] < 4.0, answered  # long before the 8 s lease ran out


def test_a_denied_package_is_answered_once_the_accounts_leases_ran_out(client: TestClient, db: Db) -> None:
    account, device, run_id = _running_run(client, db)
    assert "leaseMs" in _gate(client, device, run_id)
    elapsed, status = _timed_post(client, "/api/v1/denylist", account.token, json={"pattern": "com.a.*"})
    assert status == 201
    assert elapsed >= LEASE_S * 0.9
    # An account whose moving run never asked for a lease is answered at once.
    other, _, _ = _running_run(client, db)
    elapsed, status = _timed_post(client, "/api/v1/denylist", other.token, json={"pattern": "com.b.*"})
    assert status == 201
    assert elapsed < LEASE_S / 2


@pytest.fixture
def no_leases(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings.model_copy(update={"run_lease_s": 0.0})), raise_server_exceptions=False
    ) as client:
        yield client


def test_with_leases_off_the_gate_grants_none_and_a_cancel_answers_at_once(
    no_leases: TestClient, db: Db
) -> None:
    account, device, run_id = _running_run(no_leases, db)
    answer = _gate(no_leases, device, run_id)
    assert (answer["grantsLease"], "leaseMs" in answer) == (False, False)
    elapsed, status = _timed_post(no_leases, f"/api/v1/runs/{run_id}/cancel", account.token)
    assert status == 200
    assert elapsed < 0.3
