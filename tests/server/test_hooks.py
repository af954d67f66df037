"""Incoming hooks: a secret URL per workflow queues runs (trigger webhook, triggeredBy naming the hook)
with the body as inputs checked against the schema; rate-limited across server processes; revocable."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from server.app import create_app
from server.observability import _loggable
from server.settings import Settings
from tests.server.factories import (
    Db,
    auth,
    create_account,
    create_device,
    create_workflow,
    sample_definition,
)

SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
    "required": ["order"],
}


def _hook(client: TestClient, token: str, workflow_id: str, device_id: str, **fields: Any) -> dict[str, Any]:
    answer = client.post(
        f"/api/v1/workflows/{workflow_id}/hooks",
        json={"deviceId": device_id, "name": "crm", **fields},
        headers=auth(token),
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _path(hook: dict[str, Any]) -> str:
    return "/api/v1/hooks/" + hook["url"].rsplit("/", 1)[1]


def test_a_hook_queues_runs_with_its_body_as_inputs(client: TestClient, db: Db, settings: Settings) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id, definition=sample_definition(inputs=SCHEMA))
    hook = _hook(client, acc.token, wf.id, dev.id)
    assert hook["url"].startswith(f"{settings.public_url}/api/v1/hooks/pf_hook_")
    assert hook["url"].endswith(hook["url"].rsplit("/", 1)[1])
    listed = client.get(f"/api/v1/workflows/{wf.id}/hooks", headers=auth(acc.token)).json()
    assert [(h["name"], h["url"], h["tokenPrefix"]) for h in listed] == [("crm", None, hook["tokenPrefix"])]

    fired = client.post(_path(hook), json={"order": "A-17", "qty": 2})  # no Authorization: the URL is it
    assert fired.status_code == 201, fired.text
    run = fired.json()
    assert (run["status"], run["trigger"], run["triggeredBy"]) == ("queued", "webhook", "hook:crm")
    assert (run["workflowId"], run["deviceId"], run["inputs"]) == (wf.id, dev.id, {"order": "A-17", "qty": 2})
    page = client.get("/api/v1/runs", params={"trigger": "webhook"}, headers=auth(acc.token)).json()
    assert [r["id"] for r in page["runs"]] == [run["id"]]
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).json()
    assert claimed["run"]["id"] == run["id"]
    used = client.get(f"/api/v1/workflows/{wf.id}/hooks", headers=auth(acc.token)).json()[0]
    assert used["lastUsedAt"] is not None

    wrong_type = client.post(_path(hook), json={"order": "A-1", "qty": 0})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["pointer"] == "/qty"  # a pointer into the body
    missing = client.post(_path(hook), json={"qty": 1})
    assert missing.status_code == 422
    assert "'order' is a required property" in missing.json()["errors"][0]["message"]
    not_object = client.post(_path(hook), json=["A-1"])
    assert not_object.status_code == 422
    assert "not an object" in not_object.json()["errors"][0]["message"]
    malformed = client.post(_path(hook), content=b"{order:", headers={"content-type": "application/json"})
    assert malformed.status_code == 400
    assert "malformed JSON" in malformed.json()["detail"]
    assert client.post("/api/v1/hooks/pf_hook_nope", json={}).status_code == 404
    assert _loggable(_path(hook)) == "/api/v1/hooks/pf_hook_" + _path(hook)[22:26] + "…"


def test_making_hooks_is_checked_and_revoking_ends_them(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    other_dev = create_device(db, other.id)
    no_device = client.post(
        f"/api/v1/workflows/{wf.id}/hooks",
        json={"deviceId": other_dev.id, "name": "x"},
        headers=auth(acc.token),
    )
    assert no_device.status_code == 404
    assert (
        client.post(
            f"/api/v1/workflows/{wf.id}/hooks",
            json={"deviceId": dev.id, "name": "x"},
            headers=auth(other.token),
        ).status_code
        == 404
    )
    hook = _hook(client, acc.token, wf.id, dev.id)
    again = client.post(
        f"/api/v1/workflows/{wf.id}/hooks", json={"deviceId": dev.id, "name": "crm"}, headers=auth(acc.token)
    )
    assert again.status_code == 409
    assert "already has a hook named 'crm'" in again.json()["detail"]
    bad_rate = client.post(
        f"/api/v1/workflows/{wf.id}/hooks",
        json={"deviceId": dev.id, "name": "y", "ratePerMinute": 0},
        headers=auth(acc.token),
    )
    assert bad_rate.status_code == 422
    assert bad_rate.json()["errors"][0]["pointer"] == "/ratePerMinute"

    revoked = client.post(f"/api/v1/workflows/{wf.id}/hooks/{hook['id']}/revoke", headers=auth(acc.token))
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"] is not None
    gone = client.post(_path(hook), json={})
    assert gone.status_code == 410
    assert "revoked" in gone.json()["detail"]
    replacement = _hook(client, acc.token, wf.id, dev.id)  # the name is free again
    assert replacement["id"] != hook["id"]

    client.post(f"/api/v1/devices/{dev.id}/revoke", headers=auth(acc.token))
    orphan = client.post(_path(replacement), json={})
    assert orphan.status_code == 409
    assert "revoked" in orphan.json()["detail"]


def test_the_rate_limit_holds_across_server_processes(settings: Settings, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        hook = _hook(one, acc.token, wf.id, dev.id, ratePerMinute=3)
        answers = [client.post(_path(hook), json={}) for client in (one, two, one)]
        assert [a.status_code for a in answers] == [201, 201, 201]
        limited = two.post(_path(hook), json={})  # the fourth call this minute, to the other process
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "takes 3 calls a minute and had 4 in the last one" in limited.json()["detail"]
        bad_body = one.post(_path(hook), content=b"[", headers={"content-type": "application/json"})
        assert bad_body.status_code == 429  # counted before the body is read: a flood of junk is limited too
