"""A claim carrying the final report of the phone's last run: one request per run instead of a runs.report
and a claim. The report is judged and written by runs.report's own code in the claim's transaction, so
its answer is runs.report's per-run answer; a report that does not validate is a 422 and claims nothing;
a claim without a report answers as it always did (older bridges)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.runs import report as report_module
from server.runs import stored_run
from server.runs.claim_lane import ClaimLane
from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.schemas import RunReportIn
from server.settings import Settings
from server.webhooks.models import WebhookDelivery
from tests.server.factories import Db, WorkflowFixture, auth, create_account, create_device, create_workflow
from tests.server.lane_support import with_and_without
from tests.server.runs_support import run_report

CLAIM = "/api/v1/devices/me/claim"


def _queue(client: TestClient, account_token: str, workflow: WorkflowFixture, device_id: str) -> str:
    made = client.post(
        f"/api/v1/workflows/{workflow.id}/runs", json={"deviceId": device_id}, headers=auth(account_token)
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _final(run_id: str, workflow: WorkflowFixture, status: str = "success", steps: int = 3) -> dict[str, Any]:
    report = run_report(run_id, workflow, status=status, steps=steps, trigger="api")
    del report["startedAt"]  # the claim's startedAt stays
    return report


def _status(db: Db, run_id: str) -> tuple[str, int]:
    with db.session_factory() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.status, run.trace_len


def _updates(db: Db, run_id: str) -> list[dict[str, Any]]:
    with db.session_factory() as session:
        rows = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == run_id, RunEvent.event.is_(None))
        )
        return [dict(payload) for payload in rows]


def test_a_claim_stores_the_carried_final_report_and_claims_the_next_run(client: TestClient, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    first, second = (_queue(client, account.token, workflow, device.id) for _ in range(2))

    # A claim without a report: as before, and it says the server would take one.
    claimed = client.post(CLAIM, headers=auth(device.token))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["run"]["id"] == first
    assert claimed.json()["acceptsReport"] is True
    assert "report" not in claimed.json()

    # The first run's final report rides on the claim of the second: stored, and the second claimed.
    carried = client.post(CLAIM, json={"report": _final(first, workflow)}, headers=auth(device.token))
    assert carried.status_code == 200, carried.text
    answer = carried.json()
    assert answer["report"] == {"id": first, "result": "stored", "reason": None, "cancelRequested": False}
    assert answer["run"]["id"] == second
    assert answer["run"]["status"] == "running"
    assert answer["definition"]
    assert answer["denylist"]
    assert answer["acceptsReport"] is True
    assert _status(db, first) == ("success", 3)
    with db.session_factory() as session:
        seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == first)).all()
        assert sorted(seqs) == [1, 2, 3]
    assert _updates(db, first)[-1]["status"] == "success"  # run.updated, as runs.report writes it

    # The second run's report when nothing is queued: 200 with no run (a 204 could not say what
    # became of the report).
    last = client.post(
        CLAIM, json={"report": _final(second, workflow, "failed", 2)}, headers=auth(device.token)
    )
    assert last.status_code == 200, last.text
    assert last.json()["run"] is None
    assert last.json()["report"]["result"] == "stored"
    assert last.json()["acceptsReport"] is True
    assert _status(db, second) == ("failed", 2)

    # The same claim again (the answer was lost): unchanged, nothing written twice.
    events = len(_updates(db, second))
    again = client.post(
        CLAIM, json={"report": _final(second, workflow, "failed", 2)}, headers=auth(device.token)
    )
    assert again.status_code == 200, again.text
    assert again.json()["report"] == {
        "id": second,
        "result": "unchanged",
        "reason": None,
        "cancelRequested": False,
    }
    assert again.json()["run"] is None
    assert len(_updates(db, second)) == events

    # A claim without a report still gets its 204 when nothing is queued.
    empty = client.post(CLAIM, headers=auth(device.token))
    assert empty.status_code == 204
    assert empty.content == b""


def test_a_carried_report_of_another_devices_run_is_refused_as_runs_report_refuses_it(
    client: TestClient, db: Db
) -> None:
    account = create_account(db)
    owner, stranger = create_device(db, account.id), create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    owned = _queue(client, account.token, workflow, owner.id)
    assert client.post(CLAIM, headers=auth(owner.token)).json()["run"]["id"] == owned
    mine = _queue(client, account.token, workflow, stranger.id)

    report = _final(owned, workflow)
    by_report = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(stranger.token))
    by_claim = client.post(CLAIM, json={"report": report}, headers=auth(stranger.token))
    assert by_claim.status_code == 200, by_claim.text
    assert by_claim.json()["report"] == by_report.json()["runs"][0]
    assert by_claim.json()["report"]["result"] == "rejected"
    assert "another device" in by_claim.json()["report"]["reason"]
    assert by_claim.json()["run"]["id"] == mine  # the claim itself still counts
    assert _status(db, owned) == ("running", 0)


@pytest.mark.parametrize(
    ("spoil", "pointer"),
    [
        (lambda r: r["trace"].pop(1), "/report"),  # a gap in the seqs
        (lambda r: r.update(status="finished"), "/report/status"),
        (lambda r: r.update(surprise=1), "/report/surprise"),
        (lambda r: r.update(id="not-a-uuid"), "/report/id"),
    ],
)
def test_a_claim_with_a_report_that_does_not_validate_is_a_422_and_claims_nothing(
    client: TestClient, db: Db, spoil: Any, pointer: str
) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    first, second = (_queue(client, account.token, workflow, device.id) for _ in range(2))
    assert client.post(CLAIM, headers=auth(device.token)).json()["run"]["id"] == first

    report = _final(first, workflow)
    spoil(report)
    refused = client.post(CLAIM, json={"report": report}, headers=auth(device.token))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    pointers = [error["pointer"] for error in refused.json()["errors"]]
    assert pointer in pointers
    assert all(p.startswith("/report") for p in pointers), pointers
    # Nothing claimed, nothing stored: the report goes by runs.report, and the next claim gets the run.
    assert _status(db, second) == ("queued", 0)
    assert _status(db, first) == ("running", 0)


@pytest.mark.private_targets
def test_a_run_ended_by_a_carried_report_fires_its_webhooks(client: TestClient, db: Db) -> None:
    # The claim finds its device by a statement of its own (server/runs/claimer.py): an account with a
    # webhook endpoint must get its deliveries as from runs.report.
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["run.finished"]},
        headers=auth(account.token),
    )
    assert hook.status_code == 201, hook.text
    run_id = _queue(client, account.token, workflow, device.id)
    assert client.post(CLAIM, headers=auth(device.token)).json()["run"]["id"] == run_id
    carried = client.post(
        CLAIM, json={"report": _final(run_id, workflow, "failed")}, headers=auth(device.token)
    )
    assert carried.json()["report"]["result"] == "stored"
    with db.session_factory() as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert [d.event_type for d in deliveries] == ["run.finished"]


def test_the_lane_and_the_route_answer_a_carried_report_alike(settings: Settings, db: Db) -> None:
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)

    def answers(client: TestClient) -> list[tuple[int, Any]]:
        run_id = _queue(client, account.token, workflow, device.id)
        assert client.post(CLAIM, headers=auth(device.token)).json()["run"]["id"] == run_id
        report = _final(run_id, workflow)
        sent = [
            client.post(CLAIM, json={"report": report}, headers=auth(device.token)),
            client.post(CLAIM, json={"report": report}, headers=auth(device.token)),
            client.post(CLAIM, json={"report": {**report, "status": "done"}}, headers=auth(device.token)),
        ]
        return [(r.status_code, _without_ids(r)) for r in sent]

    with with_and_without(settings, ClaimLane) as (lane, route):
        assert answers(lane) == answers(route)


def _without_ids(response: httpx.Response) -> Any:
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("report"), dict):
        body["report"] = {**body["report"], "id": "-"}
    body.pop("requestId", None)
    return body


def test_a_carried_report_is_judged_against_the_claimers_read_of_its_run(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL the claim's first statement reads the carried run's stored state beside the device
    # (claimer.py), and the report is judged against it: no read of its own.
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    first = _queue(client, account.token, workflow, device.id)
    assert client.post(CLAIM, headers=auth(device.token)).status_code == 200
    progress = {**_final(first, workflow, status="running", steps=2), "nSteps": None}
    stored = client.post("/api/v1/runs.report", json={"runs": [progress]}, headers=auth(device.token))
    assert stored.json()["runs"][0]["result"] == "stored", stored.text
    if db.engine.dialect.name == "postgresql":
        monkeypatch.setattr(stored_run, "_PG_STORED_STATE", "SELECT no_such_column FROM runs")
    answer = client.post(CLAIM, json={"report": _final(first, workflow)}, headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["report"]["result"] == "stored"
    assert _status(db, first) == ("success", 3)


def test_a_carried_report_whose_run_moved_after_the_claimers_read_is_judged_again(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the claimer's read of the carried run and the report's write, another writer moves the run
    # (a late progress report of it, committed): the write matches nothing, and the report is judged
    # against the run read again, as runs.report judges it.
    account = create_account(db)
    device = create_device(db, account.id)
    workflow = create_workflow(db, account.id)
    first = _queue(client, account.token, workflow, device.id)
    assert client.post(CLAIM, headers=auth(device.token)).status_code == 200
    real = report_module.precheck
    moved: list[str] = []

    def precheck_after_a_move(report: Any, device_id: str, versions: Any) -> Any:
        if not moved:
            moved.append(report.id)
            progress = {**_final(first, workflow, status="running", steps=2), "nSteps": None}
            with db.session_factory.begin() as session:  # another transaction, committed
                late = report_module.ingest_reports(
                    session,
                    account_id=account.id,
                    device_id=device.id,
                    reports=[RunReportIn.model_validate(progress)],
                )
            assert [r.result for r in late.results] == ["stored"]
        return real(report, device_id, versions)

    monkeypatch.setattr(report_module, "precheck", precheck_after_a_move)
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite: one writer at a time (the late report would wait for the claim's transaction)")
    answer = client.post(CLAIM, json={"report": _final(first, workflow)}, headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    assert (moved, answer.json()["report"]["result"]) == ([first], "stored")
    assert _status(db, first) == ("success", 3)
    with db.session_factory() as session:
        seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == first)).all()
    assert sorted(seqs) == [1, 2, 3]
    assert [(u["status"], u["traceLen"]) for u in _updates(db, first)][-2:] == [
        ("running", 2),
        ("success", 3),
    ]
