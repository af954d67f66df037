"""Two server processes on one database, both running the delivery job: the same final reports sent
to both at once make one delivery per run, and each is sent once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from server.webhooks.models import WebhookDelivery
from tests.server.conftest import PRIVATE_TARGETS_ENV
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report, serve_in_subprocess
from tests.server.webhook_receiver import signature_is_valid, webhook_receiver

RUNS = 12


def test_two_processes_enqueue_and_send_each_event_once(db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    env = {"PHONEFLOW_START_SCHEDULER": "true", "PHONEFLOW_WEBHOOK_POLL_S": "0.2", **PRIVATE_TARGETS_ENV}
    with (
        webhook_receiver() as receiver,
        serve_in_subprocess(db.url, extra_env=env) as one,
        serve_in_subprocess(db.url, extra_env=env) as two,
    ):
        made = httpx.post(
            one + "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["run.finished"]},
            headers=auth(acc.token),
        )
        assert made.status_code == 201, made.text
        reports = [run_report(new_run_id(), wf, status="success", steps=1) for _ in range(RUNS)]

        def send(base_url: str, index: int) -> None:
            body = {"runs": [reports[index]]}
            answer = httpx.post(
                base_url + "/api/v1/runs.report", json=body, headers=auth(dev.token), timeout=30
            )
            assert answer.status_code == 200, answer.text

        with ThreadPoolExecutor(max_workers=4) as pool:  # each report to both processes at once
            list(pool.map(lambda job: send(*job), [(base, i) for i in range(RUNS) for base in (one, two)]))

        deadline = time.monotonic() + 60
        while True:
            with db.session_factory() as session:
                statuses = list(session.scalars(select(WebhookDelivery.status)))
            if len(statuses) == RUNS and set(statuses) == {"succeeded"}:
                break
            assert time.monotonic() < deadline, f"deliveries after 60 s: {statuses}"
            time.sleep(0.2)
        # Every delivery is done, so nothing more can be sent: what arrived is all there will be.
        received = receiver.wait_for(RUNS)
        assert len(receiver.received) == RUNS
        assert len({item.headers["webhook-id"] for item in received}) == RUNS
        assert {item.json()["data"]["run"]["id"] for item in received} == {r["id"] for r in reports}
        assert all(signature_is_valid(made.json()["secret"], item) for item in received)
        with db.session_factory() as session:
            assert set(session.scalars(select(WebhookDelivery.attempts))) == {1}
