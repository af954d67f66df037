"""The artifact store: bytes in a folder or an S3-protocol server (moto's server mode on a free
127.0.0.1 port), metadata in the database; counted per account, held to a quota, removed with
their runs by retention; and a bridge refused by the quota gives the artifact up, not its reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from device_bridge.outbox import Outbox, RowState
from device_bridge.uploader import Credentials, Uploader
from interpreter.device import Artifact as DeviceArtifact
from phoneflow.cli import app as phoneflow
from server.app import create_app
from server.artifact_store import ArtifactStore, DirectoryStore, MissingObject, store_from_settings
from server.artifact_store.s3 import S3Store
from server.artifact_store.service import ORPHAN_GRACE, sweep_orphans
from server.artifact_store.store import new_key
from server.db import utcnow
from server.runs.models import Artifact, Run
from server.runs.retention import purge_expired_runs
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
from tests.server.runs_support import new_run_id, run_report
from tests.server.test_dashboard_support import sign_in

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # 1032 bytes
JPEG = b"\xff\xd8\xff\xe0" + bytes(200)


@pytest.fixture
def app(store_settings: Settings) -> FastAPI:
    return create_app(store_settings)


@pytest.fixture
def store(store_settings: Settings) -> ArtifactStore:
    return store_from_settings(store_settings)


def stored_keys(store: ArtifactStore) -> set[str]:
    """Every object in the store (files of the folder, objects of the bucket)."""
    if isinstance(store, DirectoryStore):
        if not store.root.exists():
            return set()
        return {p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()}
    assert isinstance(store, S3Store)
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


def upload(client: TestClient, token: str, run_id: str, name: str, data: bytes = PNG) -> httpx.Response:
    content_type = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
    return client.post(
        f"/api/v1/runs/{run_id}/artifacts",
        files={"file": (name, data, content_type)},
        data={"name": name},
        headers=auth(token),
    )


def reported_run(client: TestClient, db: Db) -> tuple[AccountFixture, DeviceFixture, str]:
    """An account, its device and a run the device reported (artifacts need a run to belong to)."""
    return reported_run_of(client, db, create_account(db))


def reported_run_of(
    client: TestClient, db: Db, acc: AccountFixture
) -> tuple[AccountFixture, DeviceFixture, str]:
    """A device of `acc` and a run it reported."""
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    answer = client.post(
        "/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token)
    )
    assert answer.status_code == 200, answer.text
    return acc, dev, rid


def test_the_store_keeps_reads_streams_and_deletes_bytes(store: ArtifactStore) -> None:
    store.check()
    key = new_key("acc", "run")
    big = bytes(range(256)) * 1000  # more than one streamed chunk
    store.put(key, big, "application/octet-stream")
    assert store.get(key) == big
    assert b"".join(store.stream(key)) == big
    assert store.size(key) == len(big)
    store.put(key, b"replaced", "text/plain")
    assert store.get(key) == b"replaced"
    assert stored_keys(store) == {key}
    store.delete([key, new_key("acc", "run")])  # a key with nothing under it is no error
    assert stored_keys(store) == set()
    with pytest.raises(MissingObject):
        store.get(key)
    with pytest.raises(MissingObject):
        store.stream(key)
    for bad in ("../etc/passwd", "/abs", "a/../../b", "", ".hidden/x", "a//b"):
        with pytest.raises(ValueError, match="not an artifact store key"):
            store.put(bad, b"x", "text/plain")


def test_bytes_go_to_the_store_and_the_database_keeps_what_they_are(
    client: TestClient, db: Db, store: ArtifactStore
) -> None:
    acc, dev, rid = reported_run(client, db)
    assert upload(client, dev.token, rid, "shot.png").status_code == 201
    assert upload(client, dev.token, rid, "shot.png").status_code == 201  # the same name: nothing changes
    with db.session_factory() as session:
        row = session.scalars(select(Artifact)).one()
        assert (row.account_id, row.name, row.size, row.data) == (acc.id, "shot.png", len(PNG), None)
        assert row.store_key is not None
        assert row.store_key.startswith(f"{acc.id}/{rid}/")
        assert "shot" not in row.store_key  # keys are the server's, never a client's name
    assert stored_keys(store) == {row.store_key}
    assert store.get(row.store_key) == PNG
    served = client.get(f"/api/v1/runs/{rid}/artifacts/shot.png", headers=auth(acc.token))
    assert served.status_code == 200
    assert served.content == PNG
    account = client.get("/api/v1/account", headers=auth(acc.token)).json()
    assert account["artifactBytesUsed"] == len(PNG)
    assert account["artifactQuotaBytes"] == 1024**3  # the free plan's default

    store.delete([row.store_key])  # gone behind the server's back: a 404 that says so
    gone = client.get(f"/api/v1/runs/{rid}/artifacts/shot.png", headers=auth(acc.token))
    assert gone.status_code == 404
    assert "gone from the artifact store" in gone.json()["detail"]


def test_an_upload_over_the_quota_is_refused_saying_what_to_do(
    store_settings: Settings, db: Db, store: ArtifactStore
) -> None:
    limited = store_settings.model_copy(update={"artifact_quota_free_bytes": 2500})
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        acc, other = create_account(db), create_account(db)
        dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
        other_dev, other_wf = create_device(db, other.id), create_workflow(db, other.id)
        rid, other_rid = new_run_id(), new_run_id()
        for token, run_id, workflow in ((dev.token, rid, wf), (other_dev.token, other_rid, other_wf)):
            client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(run_id, workflow, steps=1)]},
                headers=auth(token),
            )
        assert upload(client, dev.token, rid, "a.png").status_code == 201
        assert upload(client, dev.token, rid, "b.png").status_code == 201
        refused = upload(client, dev.token, rid, "c.png")
        assert refused.status_code == 413
        problem = refused.json()
        assert problem["title"] == "Artifact quota reached"
        detail = problem["detail"]
        assert "2.0 KB of its free plan's 2.4 KB quota" in detail
        assert "1.0 KB does not fit" in detail
        assert "deleting runs" in detail
        assert "retention" in detail
        assert f"phoneflow admin set-artifact-quota {acc.email} SIZE" in detail
        assert "PHONEFLOW_ARTIFACT_QUOTA_FREE_BYTES" in detail
        # what is stored already is no new upload; another account has its own quota
        assert upload(client, dev.token, rid, "a.png").status_code == 201
        assert upload(client, other_dev.token, other_rid, "c.png").status_code == 201
        live = client.put(
            f"/api/v1/runs/{rid}/live-frame", content=JPEG + bytes(600), headers=auth(dev.token)
        )
        assert live.status_code == 413
        usage = client.get("/api/v1/account", headers=auth(acc.token)).json()
        assert (usage["artifactBytesUsed"], usage["artifactQuotaBytes"]) == (2 * len(PNG), 2500)
        sign_in(client, acc.token)
        page = client.get("/settings").text
        assert "use <strong>2.0 KB</strong>\n    of 2.4 KB (83%)" in page
        assert 'id="artifact-quota-full"' not in page
        assert upload(client, dev.token, rid, "small.png", PNG[:436]).status_code == 201  # exactly full
        assert 'id="artifact-quota-full"' in client.get("/settings").text
    assert len(stored_keys(store)) == 4  # nothing of a refused upload was left in the store


def test_an_administrator_gives_one_account_a_quota_of_its_own(
    store_settings: Settings, db: Db, store: ArtifactStore
) -> None:
    limited = store_settings.model_copy(update={"artifact_quota_free_bytes": 2500})
    runner = CliRunner()

    def set_quota(email: str, size: str) -> Result:
        return runner.invoke(
            phoneflow,
            ["admin", "set-artifact-quota", email, size, "--database-url", db.url],
            env={"PHONEFLOW_ARTIFACT_QUOTA_FREE_BYTES": "2500"},  # as the server's
        )

    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        acc, other = create_account(db), create_account(db)
        _, acc_dev, rid = reported_run_of(client, db, acc)
        _, other_dev, other_rid = reported_run_of(client, db, other)
        for name in ("a.png", "b.png"):
            assert upload(client, acc_dev.token, rid, name).status_code == 201
            assert upload(client, other_dev.token, other_rid, name).status_code == 201

        raised = set_quota(acc.email, "4KB")
        assert raised.exit_code == 0, raised.output
        assert f"account {acc.email}: artifact quota 4.0 KB (its own); 2.0 KB in use" in raised.stderr
        assert upload(client, acc_dev.token, rid, "c.png").status_code == 201
        assert upload(client, other_dev.token, other_rid, "c.png").status_code == 413  # the plan's, still
        usage = client.get("/api/v1/account", headers=auth(acc.token)).json()
        assert usage["artifactQuotaBytes"] == 4096
        refused = upload(client, acc_dev.token, rid, "d.png")
        assert refused.status_code == 413
        assert "3.0 KB of its own 4.0 KB quota" in refused.json()["detail"]

        back = set_quota(acc.email, "plan")
        assert back.exit_code == 0, back.output
        assert "artifact quota 2.4 KB (its free plan's)" in back.stderr
        assert client.get("/api/v1/account", headers=auth(acc.token)).json()["artifactQuotaBytes"] == 2500

    for bad in ("lots", "5 XB", "1.5.2GB"):
        wrong = set_quota(acc.email, bad)
        assert wrong.exit_code == 2
        said = " ".join(wrong.stderr.replace("│", " ").split())  # unwrapped from its box
        assert "is not a size: give bytes or a number with KB, MB, GB or TB" in said
    unknown = set_quota("nobody@example.com", "1GB")
    assert unknown.exit_code == 1
    assert "phoneflow admin create-account nobody@example.com" in unknown.stderr


def test_live_frames_replace_each_other_in_the_store(
    client: TestClient, db: Db, store: ArtifactStore
) -> None:
    acc, dev, rid = reported_run(client, db)
    for n in (1, 2):
        frame = JPEG + bytes([n]) * n
        assert (
            client.put(f"/api/v1/runs/{rid}/live-frame", content=frame, headers=auth(dev.token)).status_code
            == 204
        )
        assert client.get(f"/api/v1/runs/{rid}/artifacts/live.jpg", headers=auth(acc.token)).content == frame
    assert stored_keys(store) == {f"{acc.id}/{rid}/live.jpg"}
    assert client.get("/api/v1/account", headers=auth(acc.token)).json()["artifactBytesUsed"] == len(JPEG) + 2


def test_retention_empties_the_store_of_expired_runs(
    client: TestClient, db: Db, store: ArtifactStore
) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    now = utcnow()
    old, new = new_run_id(), new_run_id()
    for rid, age in ((old, 40), (new, 1)):
        body = run_report(rid, wf, status="success", steps=1, started_at=now - timedelta(days=age))
        client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        assert upload(client, dev.token, rid, "a.png").status_code == 201
        assert upload(client, dev.token, rid, "b.png").status_code == 201
    assert (
        client.put(f"/api/v1/runs/{old}/live-frame", content=JPEG, headers=auth(dev.token)).status_code == 204
    )
    assert len(stored_keys(store)) == 5
    with db.session_factory.begin() as session:  # the old run reached the server 40 days ago
        session.execute(
            update(Run)
            .where(Run.id == old)
            .values(created_at=now - timedelta(days=40), updated_at=now - timedelta(days=40))
        )
    report = purge_expired_runs(client.app.state.session_factory, now=now, batch_size=1)
    assert report.runs == 1
    left = stored_keys(store)
    assert len(left) == 2
    assert all(key.startswith(f"{acc.id}/{new}/") for key in left)
    assert client.get("/api/v1/account", headers=auth(acc.token)).json()["artifactBytesUsed"] == 2 * len(PNG)


def test_objects_no_artifact_points_at_are_swept_once_old_enough(
    client: TestClient, db: Db, store: ArtifactStore
) -> None:
    acc, dev, rid = reported_run(client, db)
    assert upload(client, dev.token, rid, "kept.png").status_code == 201
    (kept,) = stored_keys(store)
    # Bytes put by a server that died before inserting their row: beside a run's artifact, and of a
    # run the database never heard of.
    beside, stray = new_key(acc.id, rid), new_key(acc.id, new_run_id())
    store.put(beside, b"orphan", "image/png")
    store.put(stray, b"orphan", "image/png")
    session_factory = client.app.state.session_factory

    # Young objects may be saves whose rows are not committed yet: left alone.
    assert sweep_orphans(session_factory, store) == 0
    assert stored_keys(store) == {kept, beside, stray}

    # Not a key the server makes (another tool's object in a shared bucket): never the sweep's.
    foreign = "backups/2026/db.dump"
    store.put(foreign, b"not ours", "application/octet-stream")

    later = utcnow() + ORPHAN_GRACE + timedelta(minutes=1)
    assert sweep_orphans(session_factory, store, now=later, runs_per_query=1) == 2
    assert stored_keys(store) == {kept, foreign}
    served = client.get(f"/api/v1/runs/{rid}/artifacts/kept.png", headers=auth(acc.token))
    assert (served.status_code, served.content) == (200, PNG)


def test_a_bridge_refused_by_the_quota_gives_the_artifact_up_and_still_sends_its_reports(
    store_settings: Settings, db: Db, tmp_path: Path
) -> None:
    limited = store_settings.model_copy(update={"artifact_quota_free_bytes": 1500})
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        acc = create_account(db)
        dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
        rid = new_run_id()
        outbox = Outbox(tmp_path / "outbox.db")
        outbox.enqueue(run_report(rid, wf, status="running", steps=1), dev.id)
        outbox.add_artifact(rid, dev.id, DeviceArtifact("one.png", "image/png", PNG))
        outbox.add_artifact(rid, dev.id, DeviceArtifact("two.png", "image/png", PNG))
        outbox.enqueue(run_report(rid, wf, status="success", steps=2), dev.id)
        uploader = Uploader(
            outbox, lambda _device: Credentials("http://testserver", dev.token), client=client
        )
        uploader.upload_all()  # returns: nothing is retried forever
        assert outbox.count(RowState.PENDING) == 0
        rejected = outbox.artifacts()
        assert [(a.name, a.state) for a in rejected] == [("two.png", RowState.REJECTED)]
        assert "quota" in (rejected[0].reason or "")
        run = client.get(f"/api/v1/runs/{rid}", headers=auth(acc.token)).json()
        assert run["status"] == "success"
        names = [
            a["name"] for a in client.get(f"/api/v1/runs/{rid}/artifacts", headers=auth(acc.token)).json()
        ]
        assert names == ["one.png"]
        outbox.close()
