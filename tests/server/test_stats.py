"""GET /api/v1/stats: success rate, durations, last incident, per day, top workflows, per device."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from server.db import utcnow
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import iso, new_run_id, run_report, trace_event


def test_stats_over_a_period(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db)
    dev_a = create_device(db, acc.id, name="Pixel A")
    dev_b = create_device(db, acc.id, name="Pixel B")
    wf_x, wf_y = create_workflow(db, acc.id, name="X"), create_workflow(db, acc.id, name="Y")
    now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    if now > utcnow():
        now -= timedelta(days=1)
    yesterday, today = now - timedelta(days=1), now
    plan = [  # (workflow, device, status, steps, when)
        (wf_x, dev_a, "success", 1, yesterday),
        (wf_x, dev_a, "success", 3, yesterday),
        (wf_x, dev_b, "failed", 2, today),
        (wf_y, dev_b, "success", 1, today),
        (wf_y, dev_b, "timeout", 5, today + timedelta(minutes=1)),
        (wf_x, dev_a, "running", 1, today),
        (wf_x, dev_a, "success", 1, now - timedelta(days=20)),  # outside a 7-day period
    ]
    incident = None
    for wf, dev, status, steps, when in plan:
        report = run_report(new_run_id(), wf, status=status, steps=steps, started_at=when)
        if status == "timeout":
            incident = report["id"]
        answer = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(dev.token)).json()
        assert answer["runs"][0]["result"] == "stored"

    stats = client.get("/api/v1/stats?days=7", headers=auth(acc.token)).json()
    assert stats["totalRuns"] == 6
    assert stats["finishedRuns"] == 5
    assert stats["successRate"] == 0.6
    # durations of finished runs: (steps + 1) s each → 2, 4, 3, 2, 6 s
    assert stats["averageDurationMs"] == 3400.0
    assert stats["lastIncident"]["id"] == incident
    assert stats["lastIncident"]["status"] == "timeout"
    assert stats["perDay"] == [
        {
            "day": yesterday.strftime("%Y-%m-%d"),
            "counts": {"success": 2},
            "successRate": 1.0,
            "averageDurationMs": 3000.0,  # 2 s and 4 s
        },
        {
            "day": today.strftime("%Y-%m-%d"),
            "counts": {"failed": 1, "running": 1, "success": 1, "timeout": 1},
            "successRate": round(1 / 3, 4),
            "averageDurationMs": round(11000 / 3, 1),  # 3 s, 2 s and 6 s
        },
    ]
    assert (stats["from"], stats["to"]) == (
        (utcnow() - timedelta(days=6)).strftime("%Y-%m-%d"),
        utcnow().strftime("%Y-%m-%d"),
    )
    top = stats["topWorkflows"]
    assert [(w["name"], w["runs"], w["successes"], w["failures"], w["successRate"]) for w in top] == [
        ("X", 4, 2, 1, round(2 / 3, 4)),
        ("Y", 2, 1, 1, 0.5),
    ]
    assert top[0]["averageDurationMs"] == 3000.0  # 2, 4 and 3 s
    devices = sorted((d["name"], d["runs"], d["busyMs"], d["utilisation"]) for d in stats["perDevice"])
    week_ms = 7 * 86_400_000
    assert devices == [
        ("Pixel A", 3, 6000, round(6000 / week_ms, 4)),
        ("Pixel B", 3, 11000, round(11000 / week_ms, 4)),
    ]
    assert stats["failingSteps"] == []  # no step failed in these traces

    empty = client.get("/api/v1/stats?days=7", headers=auth(other.token)).json()
    assert empty["totalRuns"] == 0
    assert empty["successRate"] is None
    assert empty["lastIncident"] is None
    assert client.get("/api/v1/stats?days=0", headers=auth(acc.token)).status_code == 422


def test_the_steps_that_fail_most(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf_x, wf_y = create_workflow(db, acc.id, name="X"), create_workflow(db, acc.id, name="Y")
    failures = [  # (workflow, failing node, message, the run's status)
        (wf_x, "pay", "no element with text 'Pay' on screen", "failed"),
        (wf_x, "pay", "no element with text 'Pay' on screen (again)", "failed"),
        (wf_y, "login", "app not installed: com.example.shop", "failed"),
        (wf_x, "pay", "never counted: the run has not ended", "running"),
    ]
    # Within the 7 days asked for, whatever today is (the helpers' fixed times age out of the window).
    recent = utcnow() - timedelta(hours=1)
    for wf, node, message, status in failures:
        trace = [trace_event(1), trace_event(2, node=node, outcome="failed", message=message)]
        trace = [{**event, "startedAt": iso(recent + timedelta(seconds=event["seq"]))} for event in trace]
        report = run_report(new_run_id(), wf, status=status, steps=2, trace=trace, started_at=recent)
        answer = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(dev.token)).json()
        assert answer["runs"][0]["result"] == "stored"
    steps = client.get("/api/v1/stats?days=7", headers=auth(acc.token)).json()["failingSteps"]
    assert [(s["workflowName"], s["nodeId"], s["kind"], s["failures"]) for s in steps] == [
        ("X", "pay", "action.tapByText", 2),
        ("Y", "login", "action.tapByText", 1),
    ]
    assert steps[0]["lastMessage"] == "no element with text 'Pay' on screen (again)"
