"""GET /metrics: access by token or setting, the database figures (queue, unfinished runs, scheduler
lag) read through their partial index, per-process figures (report latency, finished runs, SSE
subscribers, pool use), and several server processes summed through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update

from server.app import create_app
from server.db import utcnow
from server.metrics import DatabaseCollector
from server.runs.models import Run
from server.schedules.models import Schedule
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import SseReader, new_run_id, run_report, serve_in_subprocess, serve_in_thread

TOKEN = "metrics-secret-1"


@pytest.fixture
def metrics_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))


@pytest.fixture
def metrics_client(metrics_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(metrics_app, raise_server_exceptions=False) as client:
        yield client


def scrape(client: TestClient | httpx.Client, token: str | None = TOKEN) -> dict[str, float]:
    """The exposition parsed by prometheus-client's own parser: `name{label="v",...}` → value."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_metrics_are_off_without_a_token_and_need_the_token(
    client: TestClient, metrics_client: TestClient
) -> None:
    off = client.get("/metrics")
    assert off.status_code == 404
    assert "PHONEFLOW_METRICS_TOKEN" in off.json()["detail"]
    assert metrics_client.get("/metrics").status_code == 401
    wrong = metrics_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "PHONEFLOW_METRICS_TOKEN" in wrong.json()["detail"]
    assert "phoneflow_queue_depth" in scrape(metrics_client)


def test_public_metrics_need_no_token(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"metrics_public": True}))) as client:
        assert "phoneflow_queue_depth" in scrape(client, token=None)


@pytest.mark.private_targets
def test_the_database_figures(metrics_client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    before = scrape(metrics_client)
    assert before["phoneflow_queue_depth"] == 0
    assert before["phoneflow_queue_oldest_age_seconds"] == 0
    assert before["phoneflow_scheduler_lag_seconds"] == 0
    assert before["phoneflow_webhook_deliveries_pending"] == 0
    made = metrics_client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/x", "events": ["run.finished"]},
        headers=auth(acc.token),
    )
    metrics_client.post(f"/api/v1/webhooks/{made.json()['id']}/test", headers=auth(acc.token))
    for _ in range(3):
        answer = metrics_client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        assert answer.status_code == 201, answer.text
    # The oldest queued run was made 90 s ago.
    with db.session_factory.begin() as session:
        oldest = session.query(Run).order_by(Run.created_at).first()
        assert oldest is not None
        oldest.created_at = utcnow() - timedelta(seconds=90)
    metrics_client.post("/api/v1/devices/me/claim", headers=auth(dev.token))  # the oldest starts running
    metrics_client.post(
        "/api/v1/runs.report", json={"runs": [run_report(new_run_id(), wf, steps=1)]}, headers=auth(dev.token)
    )
    schedule = metrics_client.post(
        f"/api/v1/workflows/{wf.id}/schedules",
        json={"deviceId": dev.id, "cron": "* * * * *"},
        headers=auth(acc.token),
    )
    assert schedule.status_code == 201, schedule.text
    with db.session_factory.begin() as session:  # a slot 2 minutes overdue: nothing dispatched it
        session.execute(update(Schedule).values(next_fire_at=utcnow() - timedelta(minutes=2)))

    after = scrape(metrics_client)
    assert after["phoneflow_queue_depth"] == 2
    assert after['phoneflow_runs{status="queued"}'] == 2
    assert after['phoneflow_runs{status="running"}'] == 2  # the claimed one and the reported one
    assert after['phoneflow_runs{status="waiting_for_approval"}'] == 0
    assert 0 < after["phoneflow_queue_oldest_age_seconds"] < 90  # the 90 s one runs now
    assert 119 <= after["phoneflow_scheduler_lag_seconds"] < 180
    assert after["phoneflow_webhook_deliveries_pending"] == 1  # the test event (no delivery job here)
    assert after["phoneflow_webhook_oldest_pending_age_seconds"] > 0


def test_the_database_figures_read_the_partial_index(db: Db) -> None:
    """The figures' queries touch only unfinished runs (a partial index), not a million finished ones."""
    plans: list[str] = []

    def explain(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM runs" in statement and not statement.startswith("EXPLAIN"):
            prefix = "EXPLAIN " if db.kind == "postgresql" else "EXPLAIN QUERY PLAN "
            if db.kind == "postgresql":
                cursor.execute("SET enable_seqscan = off")
            cursor.execute(prefix + statement, parameters)
            plans.append(
                " ".join(str(row[-1] if db.kind == "sqlite" else row[0]) for row in cursor.fetchall())
            )

    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", explain)
    try:
        with db.engine.connect() as conn:
            list(DatabaseCollector(conn).collect())
    finally:
        event.remove(db.engine, "before_cursor_execute", explain)
    assert len(plans) == 2, plans
    for plan in plans:
        assert "ix_runs_active_status_created" in plan, plan


def test_process_figures_report_latency_finished_runs_subscribers_and_pool(
    metrics_app: FastAPI, db: Db
) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    with serve_in_thread(metrics_app) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        before = scrape(http)
        reports = [
            run_report(new_run_id(), wf, status="success", steps=2),
            run_report(new_run_id(), wf, status="failed", steps=1),
            run_report(new_run_id(), wf, status="running", steps=1),
        ]
        answer = http.post("/api/v1/runs.report", json={"runs": reports}, headers=auth(dev.token))
        assert answer.status_code == 200, answer.text
        http.post(
            "/api/v1/runs.report", json={"runs": reports[:1]}, headers=auth(dev.token)
        )  # again: unchanged
        queued = http.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        http.post(f"/api/v1/runs/{queued.json()['id']}/cancel", headers=auth(acc.token))
        reader = SseReader(base_url, acc.token)
        try:
            reader.wait_subscribed()
            during = scrape(http)
        finally:
            reader.close()

        def delta(name: str) -> float:
            return during.get(name, 0) - before.get(name, 0)

        assert delta("phoneflow_runs_report_duration_seconds_count") == 2
        assert delta("phoneflow_runs_report_duration_seconds_sum") > 0
        assert delta('phoneflow_runs_reported_total{result="stored"}') == 3
        assert delta('phoneflow_runs_reported_total{result="unchanged"}') == 1
        assert delta('phoneflow_runs_finished_total{status="success"}') == 1
        assert delta('phoneflow_runs_finished_total{status="failed"}') == 1
        assert delta('phoneflow_runs_finished_total{status="cancelled"}') == 1  # the queued run cancelled
        assert delta('phoneflow_runs_finished_total{status="timeout"}') == 0
        assert delta("phoneflow_sse_subscribers") == 1
        assert during["phoneflow_db_pool_connections_in_use"] >= 1  # the scrape's own connection
        assert during["phoneflow_db_pool_capacity"] >= 15
        route = 'method="POST",route="/api/v1/runs/{run_id}/cancel"'
        assert delta(f"phoneflow_http_request_duration_seconds_count{{{route}}}") == 1


def test_several_server_processes_are_summed(db: Db, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PHONEFLOW_METRICS_PUBLIC": "true"}
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    with serve_in_subprocess(db.url, extra_env=env) as one, serve_in_subprocess(db.url, extra_env=env) as two:
        for base_url, status in ((one, "success"), (two, "success"), (two, "failed")):
            body = {"runs": [run_report(new_run_id(), wf, status=status, steps=1)]}
            assert (
                httpx.post(base_url + "/api/v1/runs.report", json=body, headers=auth(dev.token)).status_code
                == 200
            )
        for base_url in (one, two):  # either process answers with both processes' counts
            with httpx.Client(base_url=base_url, timeout=10) as http:
                figures = scrape(http, token=None)
            assert figures['phoneflow_runs_finished_total{status="success"}'] == 2
            assert figures['phoneflow_runs_finished_total{status="failed"}'] == 1
            assert figures["phoneflow_runs_report_duration_seconds_count"] == 3
