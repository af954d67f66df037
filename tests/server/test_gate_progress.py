"""The step gate carrying a run's progress: one request per step stores the trace so far (by runs.report's
rules) and answers the gate after it; a gate without it answers as it always did (older bridges)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.service import summary_json
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


def _events(db: Db, run_id: str) -> list[str | None]:
    with db.session_factory() as session:
        return list(
            session.scalars(select(RunEvent.event).where(RunEvent.run_id == run_id).order_by(RunEvent.id))
        )


def test_a_gate_with_the_runs_progress_stores_it_and_announces_the_step(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = new_run_id()
    first = client.post(
        "/api/v1/runs.report",
        json={"runs": [run_report(run_id, workflow, steps=1)]},
        headers=auth(device.token),
    )
    assert first.json()["runs"][0]["result"] == "stored"
    gate = f"/api/v1/devices/me/runs/{run_id}/gate"

    # An older bridge's gate: no report in it, none in the answer; the server says it would take one.
    plain = client.post(gate, json={"seq": 2, "nodeId": "n2"}, headers=auth(device.token))
    assert plain.status_code == 200, plain.text
    assert plain.json()["acceptsReport"] is True
    assert "report" not in plain.json()

    # The progress after step 2 rides on the gate of step 3: stored, the step announced, one request.
    body = {"seq": 3, "nodeId": "n3", "report": run_report(run_id, workflow, steps=2)}
    answer = client.post(gate, json=body, headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["report"] == {"result": "stored", "reason": None}
    assert answer.json()["status"] == "running"
    assert answer.json()["cancelRequested"] is False
    with db.session_factory() as session:
        assert session.get(Run, run_id).trace_len == 2  # type: ignore[union-attr]
        seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == run_id)).all()
        assert sorted(seqs) == [1, 2]
    # run.updated (the report) and run.step (the step in flight), in the order they happened
    assert _events(db, run_id)[-2:] == [None, "run.step"]

    # The same gate again (a retry after a lost answer): unchanged, nothing written twice.
    again = client.post(gate, json=body, headers=auth(device.token))
    assert again.json()["report"] == {"result": "unchanged", "reason": None}
    assert _events(db, run_id)[-1] == "run.step"
    assert _events(db, run_id).count(None) == 2  # the first report and the gate's

    # A contradiction is refused with its reason; the gate still answers.
    changed = run_report(run_id, workflow, steps=2)
    changed["trace"][1]["nodeId"] = "elsewhere"
    refused = client.post(gate, json={**body, "report": changed}, headers=auth(device.token))
    assert refused.status_code == 200, refused.text
    assert refused.json()["report"]["result"] == "rejected"
    assert "seq 2" in refused.json()["report"]["reason"]
    assert refused.json()["status"] == "running"

    # A cancel asked meanwhile is in the same answer as the carried report's result.
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(account.token)).status_code == 200
    body = {"seq": 4, "nodeId": "n4", "report": run_report(run_id, workflow, steps=3)}
    cancelled = client.post(gate, json=body, headers=auth(device.token)).json()
    assert cancelled["report"]["result"] == "stored"
    assert cancelled["cancelRequested"] is True


def test_a_gate_refuses_another_runs_report_and_anothers_device(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device, stranger = create_device(db, account.id), create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id, other_id = new_run_id(), new_run_id()
    for rid in (run_id, other_id):
        client.post(
            "/api/v1/runs.report", json={"runs": [run_report(rid, workflow)]}, headers=auth(device.token)
        )
    gate = f"/api/v1/devices/me/runs/{run_id}/gate"

    wrong = client.post(
        gate, json={"seq": 1, "nodeId": "n1", "report": run_report(other_id, workflow, steps=1)},
        headers=auth(device.token),
    )  # fmt: skip
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/report/id"
    assert other_id in wrong.json()["errors"][0]["message"]

    # Another device's gate of this run: 404, and its report is not stored either.
    body = {"seq": 1, "nodeId": "n1", "report": run_report(run_id, workflow, steps=1)}
    assert client.post(gate, json=body, headers=auth(stranger.token)).status_code == 404
    with db.session_factory() as session:
        assert session.get(Run, run_id).trace_len == 0  # type: ignore[union-attr]


def test_a_revoked_devices_gate_is_refused_at_once_and_stores_nothing(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    run_id = new_run_id()
    client.post(
        "/api/v1/runs.report",
        json={"runs": [run_report(run_id, workflow, steps=1)]},
        headers=auth(device.token),
    )
    gate = f"/api/v1/devices/me/runs/{run_id}/gate"
    body = {"seq": 3, "nodeId": "n3", "report": run_report(run_id, workflow, steps=2)}
    assert client.post(gate, json={"seq": 2, "nodeId": "n2"}, headers=auth(device.token)).status_code == 200

    assert client.post(f"/api/v1/devices/{device.id}/revoke", headers=auth(account.token)).status_code == 200
    refused = client.post(gate, json=body, headers=auth(device.token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    with db.session_factory() as session:
        assert session.get(Run, run_id).trace_len == 1  # type: ignore[union-attr]


def test_the_gates_run_updated_is_the_runs_summary_and_the_step_follows_it(
    client: TestClient, db: Db
) -> None:
    # On PostgreSQL the gate's write makes the run.updated payload in SQL (server/runs/stored_run.py):
    # it must be what `summary_json` makes of the row, nulls, times and inputs included.
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    queued = client.post(
        f"/api/v1/workflows/{workflow.id}/runs",
        json={"deviceId": device.id, "inputs": {"order": "A-7", "note": "x\\y\ttab é"}},
        headers=auth(account.token),
    )
    assert queued.status_code == 201, queued.text
    claimed = client.post("/api/v1/devices/me/claim", headers=auth(device.token))
    run_id = claimed.json()["run"]["id"]
    gate = f"/api/v1/devices/me/runs/{run_id}/gate"
    for seq in (2, 3):
        report = run_report(run_id, workflow, steps=seq - 1, trigger="api", inputs=queued.json()["inputs"])
        del report["startedAt"]  # the claim's startedAt stays
        answer = client.post(
            gate, json={"seq": seq, "nodeId": f"n{seq}", "report": report}, headers=auth(device.token)
        )
        assert answer.json()["report"] == {"result": "stored", "reason": None}, answer.text
    with db.session_factory() as session:
        rows = session.execute(
            select(RunEvent.event, RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
        ).all()
        run = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
    events = [(event, p if isinstance(p, dict) else json.loads(p)) for event, p in rows]
    # queued, claimed, then run.updated and run.step at each gate
    assert [event for event, _ in events] == [None, None, None, "run.step", None, "run.step"]
    assert events[-2][1] == summary_json(run)
    assert events[-1][1]["seq"] == 3
    assert events[-2][1]["traceLen"] == 2
    assert events[-2][1]["startedAt"] == claimed.json()["run"]["startedAt"]
