"""Run artifacts: a device uploads a file of its run; the account lists and reads it, inert (a
screenshot inline, text as a download, never a page of the dashboard's origin) — with the bytes in
either artifact store (a folder, an S3-protocol server)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from server.app import create_app
from server.db import utcnow
from server.runs.models import Artifact
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in


@pytest.fixture
def app(store_settings: Settings) -> FastAPI:
    """Every test here runs against both artifact stores (a folder, an S3 server)."""
    return create_app(store_settings)


def test_upload_list_and_read(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev, other_dev = create_device(db, acc.id), create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    def upload(token: str, run_id: str = rid) -> int:
        response = client.post(
            f"/api/v1/runs/{run_id}/artifacts",
            files={"file": ("failure-1.png", png, "image/png")},
            data={"name": "failure-1.png"},
            headers=auth(token),
        )
        return response.status_code

    assert upload(dev.token) == 201
    assert upload(dev.token) == 201  # the same name again changes nothing
    assert upload(other_dev.token) == 404  # not this device's run
    assert upload(dev.token, new_run_id()) == 404  # not reported yet

    listed = client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(acc.token)).json()
    assert [(a["name"], a["contentType"], a["size"]) for a in listed] == [
        ("failure-1.png", "image/png", len(png))
    ]
    body = client.get(f"/api/v1/runs/{rid}/artifacts/failure-1.png", headers=auth(acc.token))
    assert body.status_code == 200
    assert body.content == png
    assert body.headers["content-type"] == "image/png"
    assert client.get(f"/api/v1/runs/{rid}/artifacts/nope.png", headers=auth(acc.token)).status_code == 404
    assert client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(other.token)).status_code == 404


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
INERT = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'"}


def _upload(
    client: TestClient, token: str, run_id: str, name: str, data: bytes, content_type: str
) -> httpx.Response:
    return client.post(
        f"/api/v1/runs/{run_id}/artifacts",
        files={"file": (name, data, content_type)},
        data={"name": name},
        headers=auth(token),
    )


def test_only_screenshots_and_text_are_taken_and_never_served_as_a_page(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token))
    script = b"<html><script>fetch('/settings')</script></html>"
    for name, data, content_type in (
        ("screen.html", script, "text/html"),
        ("screen.svg", b"<svg onload='alert(1)'/>", "image/svg+xml"),
        ("screen.png", script, "image/png"),  # the bytes are not what the type says
        ("screen.xml", b"\xff\xfe<x/>", "application/xml"),  # not UTF-8
        ("screen.bin", b"\x00\x01\x02", "application/octet-stream"),
    ):
        refused = _upload(client, dev.token, rid, name, data, content_type)
        assert refused.status_code == 422, (name, refused.text)
        assert refused.json()["errors"][0]["pointer"] == "/file"
    for bad_name in ("a\x00b.png", "a\nb.png", "..", "x" * 201):
        refused = _upload(client, dev.token, rid, bad_name, PNG, "image/png")
        assert refused.status_code == 422, (bad_name, refused.text)
        assert refused.json()["errors"][0]["pointer"] == "/name"

    hierarchy = b'<?xml version="1.0"?><hierarchy><node text="<script>x</script>"/></hierarchy>'
    assert _upload(client, dev.token, rid, "shot.png", PNG, "image/png").status_code == 201
    assert _upload(client, dev.token, rid, "window.xml", hierarchy, "text/xml").status_code == 201
    sign_in(client, acc.token)
    for base in (f"/api/v1/runs/{rid}/artifacts", f"/runs/{rid}/artifacts"):
        headers = auth(acc.token) if base.startswith("/api") else {}
        image = client.get(f"{base}/shot.png", headers=headers)
        assert image.status_code == 200
        assert image.content == PNG
        assert image.headers["content-type"] == "image/png"
        assert image.headers["content-disposition"].startswith("inline")
        assert INERT.items() <= image.headers.items()
        text = client.get(f"{base}/window.xml", headers=headers)
        assert text.content == hierarchy
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert text.headers["content-disposition"] == "attachment; filename*=UTF-8''window.xml"
        assert INERT.items() <= text.headers.items()

    # what an older server stored as a page is served as a download of text
    with db.session_factory.begin() as session:
        session.execute(
            insert(Artifact).values(
                run_id=rid,
                account_id=acc.id,
                name="old.html",
                content_type="text/html",
                size=len(script),
                data=script,
                created_at=utcnow(),
            )
        )
    old = client.get(f"/runs/{rid}/artifacts/old.html")
    assert old.headers["content-type"] == "text/plain; charset=utf-8"
    assert old.headers["content-disposition"].startswith("attachment")
    assert INERT.items() <= old.headers.items()


def test_the_artifact_limit_is_the_one_that_counts(store_settings: Settings, db: Db) -> None:
    limited = store_settings.model_copy(update={"artifact_max_bytes": 300_000})
    assert limited.max_body_bytes < 200_000  # the test server's body limit is far below the artifact's
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        acc = create_account(db)
        dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
        rid = new_run_id()
        client.post(
            "/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token)
        )
        big = PNG + b"\x00" * 250_000
        assert _upload(client, dev.token, rid, "big.png", big, "image/png").status_code == 201
        too_big = _upload(client, dev.token, rid, "huge.png", big + b"\x00" * 100_000, "image/png")
        assert too_big.status_code == 413
        assert "larger than 300000 bytes; send a smaller file" in too_big.json()["detail"]
        report = client.post(
            "/api/v1/runs.report", content=b"{" + b" " * 200_000 + b"}", headers=auth(dev.token)
        )
        assert report.status_code == 413
        assert "split the run reports into smaller batches" in report.json()["detail"]
