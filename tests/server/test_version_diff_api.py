"""GET /api/v1/workflows/{id}/versions/{a}/diff/{b}, and the dashboard's compare page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.factories import Db, auth, create_account, sample_definition
from tests.server.test_dashboard_support import sign_in


def _two_versions(client: TestClient, token: str) -> tuple[str, str, str]:
    first = sample_definition()
    created = client.post(
        "/api/v1/workflows", json={"name": "Shop", "definition": first}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    second: dict[str, Any] = sample_definition(name="Shop v2")
    second["nodes"][0]["params"]["stopFirst"] = True
    second["nodes"].append({"id": "pause", "kind": "action.wait", "params": {"ms": 100}})
    second["nodes"][-2]["next"] = "pause"
    workflow_id = created.json()["id"]
    saved = client.post(
        f"/api/v1/workflows/{workflow_id}/versions", json={"definition": second}, headers=auth(token)
    )
    assert saved.status_code == 201, saved.text
    return workflow_id, created.json()["versionId"], saved.json()["id"]


def test_the_diff_of_two_versions_names_nodes_and_fields(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    workflow_id, v1, v2 = _two_versions(client, acc.token)
    answer = client.get(f"/api/v1/workflows/{workflow_id}/versions/{v1}/diff/{v2}", headers=auth(acc.token))
    assert answer.status_code == 200, answer.text
    diff = answer.json()
    assert diff["from"] == {"id": v1, "number": 1}
    assert diff["to"] == {"id": v2, "number": 2}
    assert diff["workflow"] == [
        {"pointer": "/name", "change": "changed", "before": "Open the shop", "after": "Shop v2"}
    ]
    assert diff["nodes"]["added"] == [{"id": "pause", "kind": "action.wait"}]
    assert diff["nodes"]["removed"] == []
    changed = {c["id"]: c["fields"] for c in diff["nodes"]["changed"]}
    first_id = sample_definition()["nodes"][0]["id"]
    assert changed[first_id] == [{"pointer": "/params/stopFirst", "change": "added", "after": True}]
    # The other way round: the node is removed, the field's change reversed.
    back = client.get(
        f"/api/v1/workflows/{workflow_id}/versions/{v2}/diff/{v1}", headers=auth(acc.token)
    ).json()
    assert back["nodes"]["removed"] == [{"id": "pause", "kind": "action.wait"}]


def test_the_diff_of_another_accounts_versions_is_not_found(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    workflow_id, v1, v2 = _two_versions(client, alice.token)
    answer = client.get(f"/api/v1/workflows/{workflow_id}/versions/{v1}/diff/{v2}", headers=auth(bob.token))
    assert answer.status_code == 404
    _other_workflow, other_v1, _ = _two_versions(client, alice.token)
    mixed = client.get(
        f"/api/v1/workflows/{workflow_id}/versions/{v1}/diff/{other_v1}", headers=auth(alice.token)
    )
    assert mixed.status_code == 404
    assert "GET /api/v1/workflows/" in mixed.json()["detail"]


def test_the_compare_page_shows_what_changed(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    workflow_id, v1, v2 = _two_versions(client, acc.token)
    sign_in(client, acc.token)
    page = client.get(f"/workflows/{workflow_id}/diff", params={"from_version": v1, "to_version": v2})
    assert page.status_code == 200, page.text
    assert "v1 → v2" in page.text
    assert 'data-node-change="added"' in page.text
    assert "pause" in page.text
    assert "/params/stopFirst" in page.text
    detail = client.get(f"/workflows/{workflow_id}")
    assert f'href="/workflows/{workflow_id}/versions/{v1}"' in detail.text
    assert f'href="/workflows/{workflow_id}/edit?from_version={v1}"' in detail.text
