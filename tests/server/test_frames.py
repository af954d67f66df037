"""A run's frames: a device uploads a step's screen with its meta; the account's stream hears of it once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from server.db import utcnow
from server.runs.events import RunEventHub
from server.runs.frames import frames_of
from server.runs.models import Artifact, Run, RunEvent
from server.runs.retention import purge_expired_runs
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(200))


def meta(seq: int, **more: Any) -> str:
    return json.dumps(
        {"seq": seq, "nodeId": "tap", "kind": "action.tapByText", "outcome": "ok",
         "bounds": [10, 20, 300, 120], "screen": [1080, 2340], "takenAt": "2026-11-29T09:00:00.000Z", **more}
    )  # fmt: skip


def test_a_frame_is_stored_with_its_meta_and_announced_once(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    client.post("/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=2)]}, headers=auth(dev.token))

    def upload(name: str, meta_text: str | None) -> Any:
        data = {"name": name} | ({"meta": meta_text} if meta_text is not None else {})
        return client.post(
            f"/api/v1/runs/{rid}/artifacts",
            files={"file": (name, JPEG, "image/jpeg")},
            data=data,
            headers=auth(dev.token),
        )

    assert upload("frame-00002.jpg", meta(2)).status_code == 201
    assert upload("frame-00002.jpg", meta(2)).status_code == 201  # a retry: stored once, announced once
    assert upload("frame-00001.jpg", meta(1, bounds=None)).status_code == 201
    wrong_seq = upload("frame-00003.jpg", meta(4))
    assert wrong_seq.status_code == 422
    assert wrong_seq.json()["errors"][0]["pointer"] == "/meta/seq"
    not_json = upload("frame-00003.jpg", "{")
    assert not_json.status_code == 422
    assert not_json.json()["errors"][0]["pointer"] == "/meta"
    assert upload("shot.png", meta(3)).json()["errors"][0]["pointer"] == "/name"

    with db.session_factory() as session:
        rows = session.execute(select(RunEvent.event, RunEvent.payload).where(RunEvent.run_id == rid)).all()
        frames = frames_of(session, rid)
    announced = [payload for event, payload in rows if event == "run.frame"]
    assert [(p["name"], p["seq"]) for p in announced] == [("frame-00002.jpg", 2), ("frame-00001.jpg", 1)]
    assert announced[0]["bounds"] == [10, 20, 300, 120]
    assert announced[0]["url"] == f"/api/v1/runs/{rid}/artifacts/frame-00002.jpg"
    assert [f["name"] for f in frames] == ["frame-00001.jpg", "frame-00002.jpg"]
    assert frames[0]["bounds"] is None
    assert frames[1]["screen"] == [1080, 2340]

    # The stream names the event: `run.frame` beside the run's `run.updated` events.
    hub = RunEventHub(db.engine)
    sent = b"".join(delivery.frame for delivery in hub.replay(acc.id, 0))
    assert sent.count(b"event: run.frame") == 2
    assert b"event: run.updated" in sent
    body = client.get(f"/api/v1/runs/{rid}/artifacts/frame-00002.jpg", headers=auth(acc.token))
    assert body.content == JPEG


def test_retention_removes_a_runs_frames_with_the_run(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    now = utcnow()
    old, new = new_run_id(), new_run_id()
    for rid, age in ((old, 40), (new, 1)):
        body = run_report(rid, wf, status="success", steps=2, started_at=now - timedelta(days=age))
        client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(dev.token))
        for seq in (1, 2):
            name = f"frame-{seq:05d}.jpg"
            answer = client.post(
                f"/api/v1/runs/{rid}/artifacts",
                files={"file": (name, JPEG, "image/jpeg")},
                data={"name": name, "meta": meta(seq)},
                headers=auth(dev.token),
            )
            assert answer.status_code == 201, answer.text
    with db.session_factory.begin() as session:
        session.execute(update(Run).values(updated_at=Run.created_at))
    purge_expired_runs(db.session_factory, now=now, store=client.app.state.artifact_store)
    with db.session_factory() as session:
        rows = session.execute(select(Artifact.run_id, func.count()).group_by(Artifact.run_id)).all()
        left = {str(row[0]): int(row[1]) for row in rows}
        assert frames_of(session, old) == []
        assert [f["name"] for f in frames_of(session, new)] == ["frame-00001.jpg", "frame-00002.jpg"]
    assert left == {new: 2}
