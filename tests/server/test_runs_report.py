"""runs.report: every idempotency rule of docs/http-api.md, and concurrency across threads and processes."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from interpreter.trace import RunStatus
from server.runs.models import Run, RunEvent, TraceEventRow
from server.runs.report import StoredRun, judge
from server.runs.schemas import RunReportIn
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import (
    T0,
    new_run_id,
    run_report,
    serve_in_subprocess,
    serve_in_thread,
    trace_event,
)


def _report(client: TestClient | httpx.Client, token: str, *runs: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/api/v1/runs.report", json={"runs": list(runs)}, headers=auth(token))
    assert response.status_code == 200, response.text
    answers: list[dict[str, Any]] = response.json()["runs"]
    assert [a["id"] for a in answers] == [r["id"] for r in runs]
    return answers


def test_report_rules_in_sequence(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()

    # unknown id → stored; same content again → unchanged
    assert _report(client, dev.token, run_report(rid, wf, steps=2))[0] == {
        "id": rid,
        "result": "stored",
        "reason": None,
        "cancelRequested": False,
    }
    assert _report(client, dev.token, run_report(rid, wf, steps=2))[0]["result"] == "unchanged"
    # newer: longer trace with the stored one as prefix; then waiting at the same length; then the end
    assert _report(client, dev.token, run_report(rid, wf, steps=4))[0]["result"] == "stored"
    assert (
        _report(client, dev.token, run_report(rid, wf, status="waiting_for_approval", steps=4))[0]["result"]
        == "stored"
    )
    assert _report(client, dev.token, run_report(rid, wf, steps=5))[0]["result"] == "stored"
    assert _report(client, dev.token, run_report(rid, wf, status="success", steps=6))[0]["result"] == "stored"
    # stale: an earlier status with a prefix of the trace
    assert _report(client, dev.token, run_report(rid, wf, steps=3))[0]["result"] == "unchanged"
    assert _report(client, dev.token, run_report(rid, wf, status="waiting_for_approval", steps=4))[0][
        "result"
    ] == ("unchanged")
    assert (
        _report(client, dev.token, run_report(rid, wf, status="success", steps=6))[0]["result"] == "unchanged"
    )

    run = client.get(f"/api/v1/runs/{rid}", headers=auth(acc.token)).json()
    assert run["status"] == "success"
    assert [e["seq"] for e in run["trace"]] == [1, 2, 3, 4, 5, 6]
    assert run["trace"][0] == trace_event(1)
    assert run["nSteps"] == 6
    assert run["durationMs"] == 7000
    assert run["deviceId"] == dev.id
    assert run["trigger"] == "device"


def test_contradictions_are_rejected_and_the_rest_of_the_batch_counts(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    other_dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    wf2 = create_workflow(db, acc.id, name="other")
    ended, running, fresh = new_run_id(), new_run_id(), new_run_id()
    _report(
        client, dev.token, run_report(ended, wf, status="success", steps=3), run_report(running, wf, steps=3)
    )

    changed_event = run_report(running, wf, steps=4)
    changed_event["trace"][1] = trace_event(2, node="elsewhere", outcome="failed", message="boom")
    answers = _report(
        client,
        dev.token,
        run_report(ended, wf, status="failed", steps=3),  # another terminal status
        changed_event,  # another event at a stored seq
        run_report(fresh, wf, steps=1),  # still stored
        run_report(ended, wf, status="success", steps=5),  # more events after the end
    )
    assert [a["result"] for a in answers] == ["rejected", "rejected", "stored", "rejected"]
    assert "already ended success" in answers[0]["reason"]
    assert "failed" in answers[0]["reason"]
    assert "seq 2" in answers[1]["reason"]
    assert "ended success with 3 trace events" in answers[3]["reason"]

    # another device, another workflow version, a terminal report shorter than the stored trace
    assert "another device" in _report(client, other_dev.token, run_report(running, wf, steps=5))[0]["reason"]
    wrong_version = run_report(running, wf, steps=5, workflowId=wf2.id, workflowVersionId=wf2.version_id)
    assert "workflow version" in _report(client, dev.token, wrong_version)[0]["reason"]
    short_end = _report(client, dev.token, run_report(running, wf, status="failed", steps=2))[0]
    assert short_end["result"] == "rejected"
    assert "3 are stored" in short_end["reason"]
    unknown = run_report(new_run_id(), wf, workflowVersionId=new_run_id())
    assert "does not exist in this account" in _report(client, dev.token, unknown)[0]["reason"]
    named_other = run_report(new_run_id(), wf, deviceId=other_dev.id)
    assert "belongs to device" in _report(client, dev.token, named_other)[0]["reason"]

    # another account's device cannot touch the run, and its workflow is unknown there
    acc2 = create_account(db)
    dev2 = create_device(db, acc2.id)
    wf_other_account = create_workflow(db, acc2.id)
    stolen = run_report(running, wf_other_account, steps=5)
    assert _report(client, dev2.token, stolen)[0]["result"] == "rejected"

    stored = client.get(f"/api/v1/runs/{running}", headers=auth(acc.token)).json()
    assert stored["traceLen"] == 3
    assert stored["trace"][1] == trace_event(2)
    assert client.get(f"/api/v1/runs/{running}", headers=auth(acc2.token)).status_code == 404


def test_duplicates_inside_one_batch(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    rid = new_run_id()
    answers = _report(
        client,
        dev.token,
        run_report(rid, wf, steps=2),
        run_report(rid, wf, steps=2),
        run_report(rid, wf, steps=4),
    )
    assert [a["result"] for a in answers] == ["stored", "unchanged", "stored"]
    assert client.get(f"/api/v1/runs/{rid}", headers=auth(acc.token)).json()["traceLen"] == 4
    # the same instant written another way is the same event
    other_form = run_report(rid, wf, steps=4)
    in_paris_winter = (T0 + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=1)))
    other_form["trace"][0]["startedAt"] = in_paris_winter.isoformat()
    assert _report(client, dev.token, other_form)[0]["result"] == "unchanged"


def test_bad_reports_are_4xx_problems(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    url = "/api/v1/runs.report"
    assert client.post(url, json={"runs": []}, headers=auth(dev.token)).status_code == 422
    too_many = [run_report(new_run_id(), wf) for _ in range(101)]
    assert client.post(url, json={"runs": too_many}, headers=auth(dev.token)).status_code in (413, 422)
    gap = run_report(new_run_id(), wf, steps=3)
    gap["trace"].pop(1)
    response = client.post(url, json={"runs": [gap]}, headers=auth(dev.token))
    assert response.status_code == 422
    assert "without gaps" in response.text
    extra = run_report(new_run_id(), wf, colour="red")
    assert client.post(url, json={"runs": [extra]}, headers=auth(dev.token)).status_code == 422
    assert (
        client.post(url, json={"runs": [run_report(new_run_id(), wf)]}, headers=auth(acc.token)).status_code
        == 401
    )
    assert client.post(url, json={"runs": [run_report(new_run_id(), wf)]}).status_code == 401
    response = client.post(url, content=b"{", headers={**auth(dev.token), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def _stored(status: str, trace_len: int) -> StoredRun:
    return StoredRun(RunStatus(status), trace_len, "acc", "dev", "ver")


def _in(status: str, steps: int) -> RunReportIn:
    body = {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "workflowId": "wf",
        "workflowVersionId": "ver",
        "status": status,
        "trace": [trace_event(s) for s in range(1, steps + 1)],
    }
    return RunReportIn.model_validate(body)


@pytest.mark.parametrize(
    ("stored", "report", "result"),
    [
        (("queued", 0), ("running", 0), "stored"),
        (("running", 2), ("waiting_for_approval", 2), "stored"),
        (("waiting_for_approval", 2), ("running", 2), "unchanged"),
        (("waiting_for_approval", 2), ("running", 3), "stored"),
        (("running", 3), ("waiting_for_approval", 2), "unchanged"),
        (("running", 3), ("queued", 0), "unchanged"),
        (("cancelled", 0), ("running", 0), "unchanged"),
        (("cancelled", 0), ("success", 2), "rejected"),
        (("timeout", 2), ("timeout", 2), "unchanged"),
        (("running", 2), ("timeout", 2), "stored"),
    ],
)
def test_judge_orders_statuses(stored: tuple[str, int], report: tuple[str, int], result: str) -> None:
    events = {s: trace_event(s) for s in range(1, stored[1] + 1)}
    assert judge(_stored(*stored), _in(*report), "dev", events).result == result


def _progressions(wf: Any, run_ids: list[str]) -> list[dict[str, Any]]:
    """Every report a device would send for each run: running with 0..5 events, waiting, success with 6."""
    reports = []
    for rid in run_ids:
        reports.extend(run_report(rid, wf, steps=n) for n in range(6))
        reports.append(run_report(rid, wf, status="waiting_for_approval", steps=5))
        reports.append(run_report(rid, wf, status="success", steps=6))
    return reports


def _hammer(
    base_urls: list[str], token: str, reports: list[dict[str, Any]], threads: int, rounds: int
) -> list[str]:
    """Send every report `rounds` times from `threads` threads, shuffled, over the given servers."""
    results: list[str] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            for _ in range(rounds):
                batch = list(reports)
                rng.shuffle(batch)
                for start in range(0, len(batch), 4):
                    chunk = batch[start : start + 4]
                    url = base_urls[rng.randrange(len(base_urls))] + "/api/v1/runs.report"
                    response = http.post(url, json={"runs": chunk}, headers=auth(token))
                    assert response.status_code == 200, response.text
                    with lock:
                        results.extend(a["result"] for a in response.json()["runs"])

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker, seed) for seed in range(threads)]:
            future.result()
    return results


def _assert_furthest_state(db: Db, run_ids: list[str]) -> None:
    with db.session_factory() as session:
        runs = session.scalars(select(Run).where(Run.id.in_(run_ids))).all()
        assert len(runs) == len(run_ids)
        for run in runs:
            assert (run.status, run.trace_len, run.n_steps) == ("success", 6, 6)
            seqs = session.scalars(select(TraceEventRow.seq).where(TraceEventRow.run_id == run.id)).all()
            assert sorted(seqs) == [1, 2, 3, 4, 5, 6]
            events = session.scalars(select(RunEvent.payload).where(RunEvent.run_id == run.id)).all()
            # one event per accepted change, and the last one says where the run ended
            assert 1 <= len(events) <= 8
            assert max(events, key=lambda p: (p["traceLen"], p["status"] == "success"))["status"] == "success"


def test_concurrent_out_of_order_retries_from_threads(app: FastAPI, db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run_ids = [new_run_id() for _ in range(4)]
    with serve_in_thread(app) as base_url:
        results = _hammer([base_url], dev.token, _progressions(wf, run_ids), threads=6, rounds=2)
    assert "rejected" not in results
    _assert_furthest_state(db, run_ids)
    with db.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == len(run_ids)


def test_concurrent_retries_across_two_server_processes(db: Db) -> None:
    acc = create_account(db)
    dev = create_device(db, acc.id)
    wf = create_workflow(db, acc.id)
    run_ids = [new_run_id() for _ in range(4)]
    with serve_in_subprocess(db.url) as first, serve_in_subprocess(db.url) as second:
        results = _hammer([first, second], dev.token, _progressions(wf, run_ids), threads=6, rounds=1)
    assert "rejected" not in results
    # each run was stored by exactly one first report; the rest only moved it forward
    assert results.count("stored") <= len(run_ids) * 8
    _assert_furthest_state(db, run_ids)
