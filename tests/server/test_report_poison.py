"""The bridge's outbox against the real server: one run the server cannot take among good ones is kept
aside with the server's reason, and every good run is stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from device_bridge.outbox import Outbox, RowState
from device_bridge.uploader import Credentials, Uploader
from server.runs.models import Run
from tests.server.factories import Db, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def test_a_poisoned_outbox_uploads_every_good_run(client: TestClient, db: Db, tmp_path: Path) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    poisons: dict[str, dict[str, Any]] = {
        "durationMs": {"durationMs": 10**20},
        "nSteps": {"nSteps": 2**31},
        "startedAt": {"startedAt": "0001-01-01T00:00:00+01:00"},
        "errorMessage": {"errorMessage": "broken\x00here"},
        "inputs": {"inputs": {"deep": "\ud800"}},
    }
    outbox = Outbox(tmp_path / "outbox.db")
    good: list[str] = []
    bad: dict[str, str] = {}
    for index in range(30):
        run_id = new_run_id()
        report = run_report(run_id, wf, status="success", steps=2)
        if index % 6 == 3:
            field, change = list(poisons.items())[len(bad)]
            report.update(change)
            bad[run_id] = field
        else:
            good.append(run_id)
        outbox.enqueue(report, dev.id)
    uploader = Uploader(outbox, lambda _d: Credentials("", dev.token), client=client)
    assert uploader.upload_all() == 30
    with db.session_factory() as session:
        stored = set(session.scalars(select(Run.id)))
    assert stored == set(good)
    kept = {r.run_id: r.reason or "" for r in outbox.reports([RowState.REJECTED])}
    assert set(kept) == set(bad)
    for run_id, field in bad.items():
        assert "HTTP 422" in kept[run_id]
        assert f"/runs/0/{field}" in kept[run_id], kept[run_id]
    assert outbox.count(RowState.PENDING) == 0
