"""The write of a newer report of a stored run: its trace events go in only when its compare-and-set does."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.db import utcnow
from server.runs.models import Run, TraceEventRow
from server.runs.stored_run import read_stored, store_newer
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def _params(run_id: str, device_id: str, old_status: str, old_len: int, new_len: int) -> dict[str, object]:
    return {
        "p_run_id": run_id,
        "p_old_status": old_status,
        "p_old_len": old_len,
        "p_rank": 1,
        "p_status": "running",
        "p_status_rank": 1,
        "p_trace_len": new_len,
        "p_device_id": device_id,
        "p_now": utcnow(),
        **{
            f"p_{c}": None
            for c in ("started_at", "ended_at", "duration_ms", "error_message", "n_steps", "n_failed")
        },
        "p_n_retries": None,
    }


def test_events_go_in_only_when_the_update_matches(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid = new_run_id()
    answer = client.post(
        "/api/v1/runs.report", json={"runs": [run_report(rid, wf, steps=1)]}, headers=auth(dev.token)
    )
    assert answer.json()["runs"][0]["result"] == "stored", answer.text
    events = [(2, '{"seq":2,"nodeId":"n2"}'), (3, '{"seq":3,"nodeId":"n3"}')]
    with db.session_factory.begin() as session:
        stored, stored_events = read_stored(session, rid, [1, 2, 3])
        assert (stored.status.value, stored.trace_len, sorted(stored_events)) == ("running", 1, [1])
        # Judged against a state the run is not in (another writer moved it): nothing is written.
        assert store_newer(session, _params(rid, dev.id, "running", 0, 3), rid, events) is None
    with db.session_factory() as session:
        assert session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == rid)).all() == [1]
        assert session.scalar(select(Run.trace_len).where(Run.id == rid)) == 1
    with db.session_factory.begin() as session:
        row = store_newer(session, _params(rid, dev.id, "running", 1, 3), rid, events)
        assert row is not None
        assert (row.id, row.trace_len, row.status) == (rid, 3, "running")
    with db.session_factory() as session:
        stored_rows = session.execute(
            select(TraceEventRow.seq, TraceEventRow.event).where(TraceEventRow.run_id == rid)
        ).all()
    assert sorted(seq for seq, _ in stored_rows) == [1, 2, 3]
    assert dict(stored_rows)[3] == {"seq": 3, "nodeId": "n3"}
    with db.session_factory() as session:
        _, stored_events = read_stored(session, rid, [2, 3])
    assert stored_events == {2: {"seq": 2, "nodeId": "n2"}, 3: {"seq": 3, "nodeId": "n3"}}
