"""A run's trace events are deleted with it, however the run is deleted (a trigger, not a foreign key:
server/runs/models.py TraceEventRow says why)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from server.runs.models import TraceEventRow
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def test_deleting_a_run_deletes_its_trace_events_and_only_its_own(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    gone, kept, also_gone = new_run_id(), new_run_id(), new_run_id()
    runs = [run_report(gone, wf, steps=3), run_report(kept, wf, steps=2), run_report(also_gone, wf, steps=1)]
    response = client.post("/api/v1/runs.report", json={"runs": runs}, headers=auth(dev.token))
    assert [r["result"] for r in response.json()["runs"]] == ["stored"] * 3, response.text

    with db.engine.begin() as conn:  # one statement deleting two runs, as an operator would
        conn.execute(text("DELETE FROM runs WHERE id IN (:a, :b)"), {"a": gone, "b": also_gone})
    with db.session_factory() as session:
        left = session.execute(select(TraceEventRow.run_id, TraceEventRow.seq).order_by(TraceEventRow.seq))
        assert [tuple(row) for row in left] == [(kept, 1), (kept, 2)]
