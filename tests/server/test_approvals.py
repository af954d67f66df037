"""Approvals: a device asks (idempotently), people of the account list and answer, a cancel or a
timeout ends them. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from server.approvals.models import Approval
from server.db import utcnow
from server.runs.models import Run
from server.runs.retention import purge_expired_runs
from tests.server.factories import (
    AccountFixture,
    Db,
    DeviceFixture,
    auth,
    create_account,
    create_device,
    create_workflow,
)
from tests.server.runs_support import run_report
from tests.server.test_dashboard_support import sign_in


def _claimed_run(client: TestClient, db: Db, acc: AccountFixture, dev: DeviceFixture) -> str:
    """A run of `dev`, triggered, claimed and reported `waiting_for_approval`."""
    wf = create_workflow(db, acc.id)
    created = client.post(
        f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id, "inputs": {}}, headers=auth(acc.token)
    )
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 200
    report = run_report(run_id, wf, status="waiting_for_approval", steps=1, trigger="api")
    answer = client.post("/api/v1/runs.report", json={"runs": [report]}, headers=auth(dev.token))
    assert answer.json()["runs"][0]["result"] == "stored", answer.text
    return run_id


def _ask(client: TestClient, dev: DeviceFixture, run_id: str, **changes: Any) -> Any:
    body = {
        "runId": run_id,
        "nodeId": "ask",
        "visit": 1,
        "message": "Ship order A-1?",
        "approvers": [],
        "timeoutS": 300,
        **changes,
    }
    return client.post("/api/v1/devices/me/approvals", json=body, headers=auth(dev.token))


def _decide(client: TestClient, token: str, approval_id: str, decision: str, note: str | None = None) -> Any:
    return client.post(
        f"/api/v1/approvals/{approval_id}/decision",
        json={"decision": decision, "note": note},
        headers=auth(token),
    )


def test_device_asks_idempotently_and_the_account_approves(client: TestClient, db: Db) -> None:
    acc = create_account(db, email="alice@example.com")
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)

    first = _ask(client, dev, run_id)
    assert first.status_code == 201, first.text
    approval = first.json()
    assert (approval["runId"], approval["nodeId"], approval["visit"]) == (run_id, "ask", 1)
    assert (approval["status"], approval["message"], approval["decidedBy"]) == (
        "pending",
        "Ship order A-1?",
        None,
    )
    again = _ask(client, dev, run_id)  # the bridge retries: the same approval, not a second one
    assert again.status_code == 200
    assert again.json() == approval
    second_visit = _ask(client, dev, run_id, visit=2)  # a loop reaches the node again: a new question
    assert second_visit.status_code == 201
    assert second_visit.json()["id"] != approval["id"]

    pending = client.get("/api/v1/approvals?status=pending", headers=auth(acc.token))
    assert pending.status_code == 200
    assert [a["id"] for a in pending.json()] == [second_visit.json()["id"], approval["id"]]  # newest first
    by_run = client.get(f"/api/v1/approvals?runId={run_id}&status=approved", headers=auth(acc.token))
    assert by_run.json() == []

    decided = _decide(client, acc.token, approval["id"], "approve", "looks right")
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["status"], body["decidedBy"], body["note"]) == (
        "approved",
        "alice@example.com",
        "looks right",
    )
    assert body["decidedAt"] is not None

    polled = client.get(f"/api/v1/devices/me/approvals/{approval['id']}", headers=auth(dev.token))
    assert polled.status_code == 200
    assert polled.json()["status"] == "approved"
    assert polled.json()["decidedBy"] == "alice@example.com"
    assert [
        a["id"] for a in client.get("/api/v1/approvals?status=pending", headers=auth(acc.token)).json()
    ] == [second_visit.json()["id"]]
    assert client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(acc.token)).json() == body

    # answered once: the second answer says who answered and when
    late = _decide(client, acc.token, approval["id"], "reject")
    assert late.status_code == 409
    assert "already approved by alice@example.com at " in late.json()["detail"]


def test_reject_and_only_named_approvers_may_answer(client: TestClient, db: Db) -> None:
    acc = create_account(db, email="carol@example.com")
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    approval = _ask(client, dev, run_id, approvers=["Boss@Example.com", "dan@example.com"]).json()

    refused = _decide(client, acc.token, approval["id"], "approve")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert "Boss@Example.com, dan@example.com" in detail
    assert "carol@example.com" in detail
    assert (
        client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(acc.token)).json()["status"]
        == "pending"
    )

    open_one = _ask(client, dev, run_id, nodeId="ask2").json()
    rejected = _decide(client, acc.token, open_one["id"], "reject", "not today")
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["note"]) == ("rejected", "not today")
    again = _decide(client, acc.token, open_one["id"], "approve")
    assert again.status_code == 409
    assert "already rejected by carol@example.com" in again.json()["detail"]


def test_other_accounts_and_other_devices_see_nothing(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    other_dev = create_device(db, acc.id)
    stranger = create_account(db)
    stranger_dev = create_device(db, stranger.id)
    run_id = _claimed_run(client, db, acc, dev)

    # another device (of this account or another) cannot ask for this run
    for token_holder in (other_dev, stranger_dev):
        refused = _ask(client, token_holder, run_id)
        assert refused.status_code == 404
        assert "this device has no run" in refused.json()["detail"]
    assert _ask(client, dev, "no-such-run").status_code == 404

    approval = _ask(client, dev, run_id).json()
    assert (
        client.get(
            f"/api/v1/devices/me/approvals/{approval['id']}", headers=auth(other_dev.token)
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(stranger.token)).status_code == 404
    assert _decide(client, stranger.token, approval["id"], "approve").status_code == 404
    assert client.get("/api/v1/approvals", headers=auth(stranger.token)).json() == []
    # a device token is not an account token, and the other way round
    assert client.get("/api/v1/approvals", headers=auth(dev.token)).status_code == 401
    assert (
        client.get(f"/api/v1/devices/me/approvals/{approval['id']}", headers=auth(acc.token)).status_code
        == 401
    )
    assert (
        client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(acc.token)).json()["status"]
        == "pending"
    )


def test_an_unanswered_approval_times_out(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    asked = _ask(client, dev, run_id, timeoutS=5).json()
    with db.session_factory.begin() as session:  # its five seconds have passed
        session.execute(
            update(Approval)
            .where(Approval.id == asked["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    approval = client.get(f"/api/v1/approvals/{asked['id']}", headers=auth(acc.token)).json()
    assert approval["status"] == "timed_out"
    assert approval["decidedAt"] == approval["expiresAt"]

    polled = client.get(f"/api/v1/devices/me/approvals/{approval['id']}", headers=auth(dev.token)).json()
    assert polled["status"] == "timed_out"
    assert client.get("/api/v1/approvals?status=pending", headers=auth(acc.token)).json() == []
    listed = client.get("/api/v1/approvals?status=timed_out", headers=auth(acc.token)).json()
    assert [a["id"] for a in listed] == [approval["id"]]
    late = _decide(client, acc.token, approval["id"], "approve")
    assert late.status_code == 409
    assert "timed out at " in late.json()["detail"]

    # a pending approval whose time passes while it waits
    waiting = _ask(client, dev, run_id, nodeId="later").json()
    assert waiting["status"] == "pending"
    with db.session_factory.begin() as session:
        session.execute(
            update(Approval)
            .where(Approval.id == waiting["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (
        client.get(f"/api/v1/approvals/{waiting['id']}", headers=auth(acc.token)).json()["status"]
        == "timed_out"
    )
    assert _decide(client, acc.token, waiting["id"], "approve").status_code == 409


def test_cancelling_the_run_cancels_its_pending_approvals(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    other_run = _claimed_run(client, db, acc, dev)
    pending = _ask(client, dev, run_id).json()
    answered = _ask(client, dev, run_id, nodeId="earlier").json()
    assert _decide(client, acc.token, answered["id"], "approve").status_code == 200
    elsewhere = _ask(client, dev, other_run).json()

    cancelled = client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(acc.token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelRequested"] is True

    polled = client.get(f"/api/v1/devices/me/approvals/{pending['id']}", headers=auth(dev.token)).json()
    assert (polled["status"], polled["note"]) == ("cancelled", "cancelled")
    refused = _decide(client, acc.token, pending["id"], "approve")
    assert refused.status_code == 409
    assert "cancelled" in refused.json()["detail"]
    # what was answered stays answered; another run's approval is untouched
    assert (
        client.get(f"/api/v1/approvals/{answered['id']}", headers=auth(acc.token)).json()["status"]
        == "approved"
    )
    assert (
        client.get(f"/api/v1/approvals/{elsewhere['id']}", headers=auth(acc.token)).json()["status"]
        == "pending"
    )
    # a device that has not heard of the cancel yet and asks again is told at once
    late = _ask(client, dev, run_id, nodeId="after-cancel")
    assert late.status_code == 201
    assert late.json()["status"] == "cancelled"


def test_bad_requests_are_problems(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    bad = _ask(client, dev, run_id, visit=0, timeoutS=-1)
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/visit", "/timeoutS"}
    approval = _ask(client, dev, run_id).json()
    wrong = client.post(
        f"/api/v1/approvals/{approval['id']}/decision", json={"decision": "maybe"}, headers=auth(acc.token)
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/decision"
    unknown = client.get("/api/v1/approvals?state=pending", headers=auth(acc.token))
    assert unknown.status_code == 422


def test_retention_removes_approvals_with_their_runs(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    kept_run = _claimed_run(client, db, acc, dev)
    _ask(client, dev, run_id)
    kept = _ask(client, dev, kept_run).json()
    with db.session_factory.begin() as session:
        long_ago = utcnow() - timedelta(days=40)  # made and last heard of 40 days ago
        session.execute(update(Run).where(Run.id == run_id).values(created_at=long_ago, updated_at=long_ago))

    report = purge_expired_runs(db.session_factory)

    assert report.runs == 1
    with db.session_factory() as session:
        assert list(session.scalars(select(Approval.id))) == [kept["id"]]


def test_the_run_page_shows_the_question_and_answers_it(client: TestClient, db: Db) -> None:
    acc = create_account(db, email="erin@example.com")
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    approval = _ask(client, dev, run_id).json()
    restricted = _ask(client, dev, run_id, nodeId="boss", approvers=["boss@example.com"]).json()
    csrf = sign_in(client, acc.token)

    runs = client.get("/runs")
    assert "2 approvals waiting for an answer" in runs.text
    assert 'data-live-src="/runs/_approvals"' in runs.text  # refreshed live as approvals come and go
    assert "2 approvals waiting for an answer" in client.get("/runs/_approvals").text
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "Ship order A-1?" in page.text
    assert page.text.count('value="approve"') == 1  # only the approval this account may answer
    assert "Only boss@example.com may answer; you are signed in as erin@example.com" in page.text

    refused = client.post(
        f"/runs/{run_id}/approval",
        data={"csrf_token": csrf, "approval_id": restricted["id"], "decision": "approve"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "only boss@example.com may answer" in refused.text

    answered = client.post(
        f"/runs/{run_id}/approval",
        data={"csrf_token": csrf, "approval_id": approval["id"], "decision": "approve", "note": "ok"},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    body = client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(acc.token)).json()
    assert (body["status"], body["decidedBy"], body["note"]) == ("approved", "erin@example.com", "ok")
    assert body["decidedVia"] == "dashboard"  # the device reports it as respondedVia
    again = client.post(
        f"/runs/{run_id}/approval",
        data={"csrf_token": csrf, "approval_id": approval["id"], "decision": "reject"},
        follow_redirects=False,
    )
    assert again.status_code == 409
    assert "already approved by erin@example.com" in again.text
    assert 'value="approve"' not in client.get(f"/runs/{run_id}").text
    assert "1 approval waiting for an answer" in client.get("/runs/_approvals").text


def test_timeout_0_waits_without_a_time_limit(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    run_id = _claimed_run(client, db, acc, dev)
    approval = _ask(client, dev, run_id, timeoutS=0).json()
    assert (approval["status"], approval["expiresAt"]) == ("pending", None)
    with db.session_factory.begin() as session:  # asked long ago: still waiting
        session.execute(
            update(Approval)
            .where(Approval.id == approval["id"])
            .values(requested_at=utcnow() - timedelta(days=30))
        )
    listed = client.get("/api/v1/approvals?status=pending", headers=auth(acc.token)).json()
    assert [a["id"] for a in listed] == [approval["id"]]
    assert client.get("/api/v1/approvals?status=timed_out", headers=auth(acc.token)).json() == []
    answered = _decide(client, acc.token, approval["id"], "reject", note="not this one")
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["decidedVia"]) == ("rejected", "api")
    polled = client.get(f"/api/v1/devices/me/approvals/{approval['id']}", headers=auth(dev.token)).json()
    assert (polled["status"], polled["note"], polled["decidedVia"]) == ("rejected", "not this one", "api")

    unlimited = _ask(client, dev, run_id, nodeId="again", timeoutS=0).json()
    client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth(acc.token))
    cancelled = client.get(f"/api/v1/approvals/{unlimited['id']}", headers=auth(acc.token)).json()
    assert (cancelled["status"], cancelled["note"]) == ("cancelled", "cancelled")
