"""Fleet dispatch: device tags, batches (one run per phone, ids or a tag) and runs that any free
phone with a tag may take — each handed out exactly once, however many phones claim at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import serve_in_thread


def _tag(client: TestClient | httpx.Client, token: str, device_id: str, *tags: str) -> httpx.Response:
    return client.put(f"/api/v1/devices/{device_id}/tags", json={"tags": list(tags)}, headers=auth(token))


def test_tags_are_set_normalised_and_checked(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    tagged = _tag(client, acc.token, dev.id, "Store-12", "android-14", "store-12")
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["android-14", "store-12"]
    assert client.get(f"/api/v1/devices/{dev.id}", headers=auth(acc.token)).json()["tags"] == [
        "android-14",
        "store-12",
    ]
    assert _tag(client, acc.token, dev.id, "no spaces").status_code == 422
    other = create_account(db)
    assert _tag(client, other.token, dev.id, "x").status_code == 404


def test_a_batch_queues_one_run_per_phone_by_ids_or_by_tag(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    phones = [create_device(db, acc.id) for _ in range(3)]
    spare = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    for phone in phones:
        _tag(client, acc.token, phone.id, "store-12")
    _tag(client, acc.token, spare.id, "store-99")

    made = client.post(
        f"/api/v1/workflows/{wf.id}/batches",
        json={"tag": "store-12", "inputs": {"order": "B-1"}},
        headers=auth(acc.token),
    )
    assert made.status_code == 201, made.text
    batch = made.json()
    assert (batch["total"], batch["done"], batch["counts"]) == (3, 0, {"queued": 3})
    assert sorted(run["deviceId"] for run in batch["runs"]) == sorted(phone.id for phone in phones)
    assert {run["batchId"] for run in batch["runs"]} == {batch["id"]}
    assert {run["inputs"]["order"] for run in batch["runs"]} == {"B-1"}

    # each phone claims its own run of the batch; one ends
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(phones[0].token)).json()["run"]
    assert claimed["batchId"] == batch["id"]
    client.post(f"/api/v1/runs/{batch['runs'][1]['id']}/cancel", headers=auth(acc.token))
    progress = client.get(f"/api/v1/batches/{batch['id']}", headers=auth(acc.token)).json()
    assert (progress["total"], progress["done"]) == (3, 1)
    assert progress["counts"] == {"running": 1, "cancelled": 1, "queued": 1}

    by_ids = client.post(
        f"/api/v1/workflows/{wf.id}/batches",
        json={"deviceIds": [phones[0].id, spare.id]},
        headers=auth(acc.token),
    ).json()
    assert sorted(run["deviceId"] for run in by_ids["runs"]) == sorted([phones[0].id, spare.id])

    # refusals: an unknown tag, both targets at once, a device of another account (all or nothing)
    nobody = client.post(
        f"/api/v1/workflows/{wf.id}/batches", json={"tag": "nowhere"}, headers=auth(acc.token)
    )
    assert nobody.status_code == 409
    assert "carries the tag 'nowhere'" in nobody.json()["detail"]
    both = client.post(
        f"/api/v1/workflows/{wf.id}/batches",
        json={"tag": "store-12", "deviceIds": [spare.id]},
        headers=auth(acc.token),
    )
    assert both.status_code == 422
    foreign = create_device(db, create_account(db).id)
    mixed = client.post(
        f"/api/v1/workflows/{wf.id}/batches",
        json={"deviceIds": [spare.id, foreign.id]},
        headers=auth(acc.token),
    )
    assert mixed.status_code == 404
    assert len(client.get(f"/api/v1/runs?deviceId={spare.id}", headers=auth(acc.token)).json()["runs"]) == 1
    assert (
        client.get(
            "/api/v1/batches/00000000-0000-4000-8000-000000000000", headers=auth(acc.token)
        ).status_code
        == 404
    )


def test_a_tag_run_goes_to_a_free_phone_with_the_tag(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    busy, free, untagged = (create_device(db, acc.id) for _ in range(3))
    wf = create_workflow(db, acc.id)
    _tag(client, acc.token, busy.id, "lab")
    _tag(client, acc.token, free.id, "lab")
    refused = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceTag": "nowhere", "inputs": {}},
        headers=auth(acc.token),
    )
    assert refused.status_code == 409
    made = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceTag": "lab", "inputs": {}}, headers=auth(acc.token)
    )
    assert made.status_code == 201, made.text
    run = made.json()
    assert (run["deviceId"], run["deviceTag"], run["status"]) == (None, "lab", "queued")
    # a phone's own queued run comes first; a phone without the tag never takes it
    own = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": busy.id, "inputs": {}}, headers=auth(acc.token)
    ).json()
    assert client.post("/api/v1/devices/me/claim", headers=auth(busy.token)).json()["run"]["id"] == own["id"]
    assert client.post("/api/v1/devices/me/claim", headers=auth(untagged.token)).status_code == 204
    taken = client.post("/api/v1/devices/me/claim", headers=auth(free.token)).json()["run"]
    assert (taken["id"], taken["deviceId"], taken["status"]) == (run["id"], free.id, "running")
    assert client.post("/api/v1/devices/me/claim", headers=auth(busy.token)).status_code == 204


# Without a denylist a claim is one statement on PostgreSQL (server/runs/claim_at_once.py).
@pytest.mark.parametrize("denylist", ["global", "none"])
def test_tag_runs_are_each_claimed_exactly_once_under_20_concurrent_claims(
    settings: Settings, db: Db, denylist: str
) -> None:
    app = create_app(
        settings if denylist == "global" else settings.model_copy(update={"denylist_file": None})
    )
    acc = create_account(db)
    phones = [create_device(db, acc.id) for _ in range(20)]
    wf = create_workflow(db, acc.id)
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:
        for phone in phones:
            assert _tag(http, acc.token, phone.id, "fleet").status_code == 200
        run_ids = [
            http.post(
                f"/api/v1/workflows/{wf.id}/runs",
                json={"deviceTag": "fleet", "inputs": {}},
                headers=auth(acc.token),
            ).json()["id"]
            for _ in range(5)
        ]
        start = threading.Barrier(len(phones))

        def claim(token: str) -> str | None:
            with httpx.Client(base_url=base_url, timeout=60) as own:
                start.wait()
                response = own.post("/api/v1/devices/me/claim", headers=auth(token))
                assert response.status_code in (200, 204), response.text
                return response.json()["run"]["id"] if response.status_code == 200 else None

        with ThreadPoolExecutor(len(phones)) as pool:
            results = list(pool.map(claim, [phone.token for phone in phones]))
        owners = {
            run_id: http.get(f"/api/v1/runs/{run_id}", headers=auth(acc.token)).json()["deviceId"]
            for run_id in run_ids
        }
    got = [r for r in results if r is not None]
    assert sorted(got) == sorted(run_ids)  # every run handed out, none twice
    assert results.count(None) == len(phones) - len(run_ids)
    winners = {phone.id for phone, result in zip(phones, results, strict=True) if result is not None}
    assert set(owners.values()) == winners  # each run belongs to the phone that claimed it
