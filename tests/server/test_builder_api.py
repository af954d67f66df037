"""What the builder relies on from the server: draft validation, the API by dashboard session
(cookie + CSRF header), and the builder's pages and built files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.dashboard import builder_assets
from server.workflows.models import Workflow
from tests.server.factories import Db, auth, create_account, create_workflow, sample_definition
from tests.server.test_dashboard_support import sign_in


def _validate(client: TestClient, token: str, definition: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/workflows/validate", json={"definition": definition}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_validate_a_valid_draft_answers_no_problems_and_saves_nothing(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    assert _validate(client, acc.token, sample_definition()) == {"errors": [], "warnings": []}
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Workflow)) == 0


def test_validate_lists_errors_and_warnings_with_pointers_into_the_definition(
    client: TestClient, db: Db
) -> None:
    acc = create_account(db)
    draft = sample_definition()
    draft["nodes"][0]["next"] = "nowhere"
    draft["nodes"].append({"id": "lost", "kind": "action.wait", "params": {"ms": 5}})
    report = _validate(client, acc.token, draft)
    assert {
        "pointer": "/nodes/0/next",
        "message": "no node 'nowhere'",
        "hint": report["errors"][0]["hint"],
    } in report["errors"]
    assert "add a node with id 'nowhere'" in report["errors"][0]["hint"]
    lost = next(w for w in report["warnings"] if w["pointer"] == f"/nodes/{len(draft['nodes']) - 1}")
    assert "never reached" in lost["message"]
    assert all(e["pointer"] != lost["pointer"] for e in report["errors"])


def test_validate_reports_a_definition_that_is_not_an_object(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    report = _validate(client, acc.token, [1, 2])
    assert report["errors"]
    assert report["errors"][0]["pointer"] == ""


def test_validate_uses_the_accounts_effective_denylist(client: TestClient, db: Db) -> None:
    alice, bob = create_account(db), create_account(db)
    added = client.post("/api/v1/denylist", json={"pattern": "com.casino.*"}, headers=auth(alice.token))
    assert added.status_code == 201, added.text
    draft = sample_definition()
    draft["nodes"][0]["params"]["package"] = "com.casino.slots"
    draft["targetPackages"] = ["com.casino.slots"]
    alice_report = _validate(client, alice.token, draft)
    assert any("denylist" in e["message"] or "denied" in e["message"] for e in alice_report["errors"])
    assert _validate(client, bob.token, draft)["errors"] == []  # another account's list does not apply
    draft["nodes"][0]["params"]["package"] = "com.bank.app"  # the server's global list applies to all
    draft["targetPackages"] = ["com.bank.app"]
    assert any(
        e["pointer"] == "/nodes/0/params/package" for e in _validate(client, bob.token, draft)["errors"]
    )


def test_validate_needs_an_account(client: TestClient) -> None:
    answer = client.post("/api/v1/workflows/validate", json={"definition": sample_definition()})
    assert answer.status_code == 401
    assert "pf_acc_" in answer.json()["detail"]


def test_the_api_takes_the_dashboard_session_with_its_csrf_header(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    create_workflow(db, acc.id)
    csrf = sign_in(client, acc.token)
    listed = client.get("/api/v1/workflows", headers={"X-CSRF-Token": csrf})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()) == 1
    report = client.post(
        "/api/v1/workflows/validate", json={"definition": sample_definition()}, headers={"X-CSRF-Token": csrf}
    )
    assert report.status_code == 200, report.text
    # Without the header (what a page of another site could make the browser send), or with another
    # token: refused, saying what is missing.
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        refused = client.post(
            "/api/v1/workflows", json={"name": "x", "definition": sample_definition()}, headers=headers
        )
        assert refused.status_code == 403, refused.text
        assert "X-CSRF-Token" in refused.json()["detail"]
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Workflow)) == 1
    # A bearer token still decides when both are sent.
    other = create_account(db)
    assert client.get("/api/v1/workflows", headers=auth(other.token)).json() == []
    # Signed out: the cookie opens nothing any more.
    assert client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("pf_session", "stale-session-cookie")
    ended = client.get("/api/v1/workflows", headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 401
    assert "sign in again" in ended.json()["detail"]


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A built builder (manifest, a script and a style) in tmp_path, served instead of the real one."""
    dist = tmp_path / "builder-dist"
    (dist / ".vite").mkdir(parents=True)
    (dist / "assets").mkdir()
    (dist / "assets" / "main-abc123.js").write_text("console.log('builder');\n")
    (dist / "assets" / "main-def456.css").write_text(".builder{}\n")
    manifest = {
        "src/main.tsx": {"file": "assets/main-abc123.js", "css": ["assets/main-def456.css"], "isEntry": True}
    }
    (dist / ".vite" / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(builder_assets, "BUILDER_DIST", dist)
    return dist


def test_the_builder_pages_mount_the_island_with_the_session_csrf(
    client: TestClient, db: Db, fake_build: Path
) -> None:
    acc = create_account(db)
    workflow = create_workflow(db, acc.id)
    csrf = sign_in(client, acc.token)
    new = client.get("/workflows/new")
    assert new.status_code == 200, new.text
    assert '<script type="module" src="/static/builder/assets/main-abc123.js">' in new.text
    assert 'href="/static/builder/assets/main-def456.css"' in new.text
    assert 'data-mode="new"' in new.text
    assert f'data-csrf="{csrf}"' in new.text
    edit = client.get(f"/workflows/{workflow.id}/edit")
    assert f'data-workflow-id="{workflow.id}"' in edit.text
    assert f'data-version-id="{workflow.version_id}"' in edit.text
    view = client.get(f"/workflows/{workflow.id}/versions/{workflow.version_id}")
    assert 'data-mode="view"' in view.text
    script = client.get("/static/builder/assets/main-abc123.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]


def test_the_builder_pages_refuse_another_accounts_workflow(
    client: TestClient, db: Db, fake_build: Path
) -> None:
    alice, bob = create_account(db), create_account(db)
    workflow = create_workflow(db, alice.id)
    sign_in(client, bob.token)
    for path in (
        f"/workflows/{workflow.id}/edit",
        f"/workflows/{workflow.id}/versions/{workflow.version_id}",
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "text/html" in page.headers["content-type"]


def test_only_built_files_are_served(client: TestClient, fake_build: Path) -> None:
    (fake_build.parent / "secret.js").write_text("secret")
    for name in (".vite/manifest.json", "..%2fsecret.js", "assets/missing.js", "assets"):
        assert client.get(f"/static/builder/{name}").status_code == 404, name


def test_an_unbuilt_builder_says_how_to_build_it(
    client: TestClient, db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builder_assets, "BUILDER_DIST", tmp_path / "never-built")
    acc = create_account(db)
    sign_in(client, acc.token)
    page = client.get("/workflows/new")
    assert page.status_code == 503
    assert "make builder" in page.text
