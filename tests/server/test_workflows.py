from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, create_workflow, sample_definition


def _create(client: TestClient, token: str, definition: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post(
        "/api/v1/workflows",
        json={"name": "Open the shop", "definition": definition or sample_definition()},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_create_read_list(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    created = _create(client, acc.token)
    assert set(created) >= {"id", "versionId"}
    assert created["number"] == 1
    one = client.get(f"/api/v1/workflows/{created['id']}", headers=auth(acc.token)).json()
    assert one["latestVersion"]["id"] == created["versionId"]
    assert one["latestVersion"]["definition"] == sample_definition()
    assert one["publishedVersionId"] is None
    listed = client.get("/api/v1/workflows", headers=auth(acc.token)).json()
    assert [w["id"] for w in listed] == [created["id"]]


def test_invalid_definition_lists_every_problem(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    broken = sample_definition(start="nowhere")
    broken["nodes"][0]["kind"] = "action.teleport"
    broken["nodes"][1]["next"] = "missing"
    r = client.post("/api/v1/workflows", json={"name": "x", "definition": broken}, headers=auth(acc.token))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    pointers = {e["pointer"] for e in errors}
    assert "/definition/start" in pointers
    assert any(p.startswith("/definition/nodes/0") for p in pointers)
    assert any(p.startswith("/definition/nodes/1/next") for p in pointers)
    assert all(e["message"] and e["hint"] for e in errors)
    assert client.get("/api/v1/workflows", headers=auth(acc.token)).json() == []


def test_versions_are_numbered_and_immutable(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    created = _create(client, acc.token)
    second = sample_definition(name="v2")
    r = client.post(
        f"/api/v1/workflows/{created['id']}/versions", json={"definition": second}, headers=auth(acc.token)
    )
    assert r.status_code == 201, r.text
    assert r.json()["number"] == 2
    bad = client.post(
        f"/api/v1/workflows/{created['id']}/versions",
        json={"definition": sample_definition(start=7)},
        headers=auth(acc.token),
    )
    assert bad.status_code == 422
    versions = client.get(f"/api/v1/workflows/{created['id']}/versions", headers=auth(acc.token)).json()
    assert [v["number"] for v in versions] == [1, 2]
    assert versions[0]["definition"] == sample_definition()
    assert versions[1]["definition"]["name"] == "v2"
    one = client.get(
        f"/api/v1/workflows/{created['id']}/versions/{created['versionId']}", headers=auth(acc.token)
    ).json()
    assert one["number"] == 1


def test_publish_picks_the_version_that_runs(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    created = _create(client, acc.token)
    other = create_workflow(db, acc.id)
    wrong = client.post(
        f"/api/v1/workflows/{created['id']}/publish",
        json={"versionId": other.version_id},
        headers=auth(acc.token),
    )
    assert wrong.status_code == 404
    r = client.post(
        f"/api/v1/workflows/{created['id']}/publish",
        json={"versionId": created["versionId"]},
        headers=auth(acc.token),
    )
    assert r.status_code == 200
    assert r.json()["publishedVersionId"] == created["versionId"]


def test_other_accounts_workflows_are_404(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    wf = create_workflow(db, bob.id)
    for method, path, body in (
        ("GET", f"/api/v1/workflows/{wf.id}", None),
        ("GET", f"/api/v1/workflows/{wf.id}/versions", None),
        ("POST", f"/api/v1/workflows/{wf.id}/versions", {"definition": sample_definition()}),
        ("POST", f"/api/v1/workflows/{wf.id}/publish", {"versionId": wf.version_id}),
        ("POST", f"/api/v1/workflows/{wf.id}/simulate", {}),
    ):
        r = client.request(method, path, json=body, headers=auth(alice.token))
        assert r.status_code == 404, (method, path, r.text)
    assert client.get("/api/v1/workflows", headers=auth(alice.token)).json() == []


def test_schema_is_published(client: TestClient) -> None:
    schema = client.get("/api/v1/schemas/workflow.json").json()
    assert schema["type"] == "object"
    assert "nodes" in schema["properties"]


def test_simulate_returns_a_trace(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    created = _create(client, acc.token)
    r = client.post(f"/api/v1/workflows/{created['id']}/simulate", json={}, headers=auth(acc.token))
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "success"
    assert run["workflowVersionId"] == created["versionId"]
    assert [(e["nodeId"], e["outcome"]) for e in run["trace"]] == [("open", "ok"), ("wait", "ok")]
    assert run["log"][0]["kind"] == "start"
    assert run["log"][-1]["text"] == "the run ended success"


def test_simulate_with_own_apps_and_inputs(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    definition = sample_definition(
        inputs={"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    )
    created = _create(client, acc.token, definition)
    path = f"/api/v1/workflows/{created['id']}/simulate"
    missing_input = client.post(path, json={"inputs": {}}, headers=auth(acc.token)).json()
    assert missing_input["status"] == "failed"
    assert "order" in missing_input["errorMessage"]
    no_shop = {"schemaVersion": 1, "apps": []}
    not_installed = client.post(
        path, json={"inputs": {"order": "A1"}, "apps": no_shop}, headers=auth(acc.token)
    )
    assert not_installed.status_code == 200, not_installed.text
    assert not_installed.json()["trace"][0]["message"] == "app not installed: com.example.shop"
    bad_apps = client.post(path, json={"apps": {"apps": "nope"}}, headers=auth(acc.token))
    assert bad_apps.status_code == 422
    assert bad_apps.json()["errors"][0]["pointer"] == "/apps"


def test_simulated_http_does_not_leave_the_server(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    definition = sample_definition(
        targetPackages=[],
        nodes=[
            {
                "id": "hook",
                "kind": "action.http",
                "params": {
                    "method": "POST",
                    "url": "http://192.0.2.1:9/alert",
                    "body": {"run": "{{run.id}}"},
                },
            }
        ],
        start="hook",
    )
    created = _create(client, acc.token, definition)
    run = client.post(f"/api/v1/workflows/{created['id']}/simulate", json={}, headers=auth(acc.token)).json()
    assert run["status"] == "success", run
    assert run["httpSimulated"] is True
