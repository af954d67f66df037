"""Helpers for the dashboard tests (no tests here): signing in through the pages, reading
the CSRF token a page carries, device reports, and a snapshot of an account's rows to
prove that a refused form changed nothing."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from server.accounts.models import Account
from tests.server.factories import Db, DeviceFixture, WorkflowFixture, auth

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]*)"')
# The steps a reported run walks, in order (node id, kind).
STEPS = [("open", "action.launchApp"), ("new", "action.tapByText"), ("check", "action.waitForText")]
# When runs start unless told: fixed, so that two reports of one run carry the same trace events.
STARTED = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)


def form_csrf(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = CSRF_INPUT.search(html)
    assert match is not None, "the page has no form with a csrf_token"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the sign-in page; the session's CSRF token (from the Settings page)."""
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    answer = client.post(
        "/signin", data={"token": token, "csrf_token": form_csrf(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    settings = client.get("/settings")
    assert settings.status_code == 200, settings.text
    return form_csrf(settings.text)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def run_report(
    run_id: str,
    workflow_id: str,
    version_id: str,
    *,
    status: str,
    steps: int,
    started: datetime | None = None,
    failed_message: str | None = None,
) -> dict[str, Any]:
    """The whole state of a run after `steps` of STEPS, as a device reports it with runs.report."""
    started = started or STARTED
    trace = []
    for seq in range(1, steps + 1):
        node_id, kind = STEPS[seq - 1]
        failed = failed_message is not None and seq == steps
        trace.append(
            {
                "seq": seq,
                "nodeId": node_id,
                "kind": kind,
                "outcome": "failed" if failed else "ok",
                "message": failed_message if failed else None,
                "startedAt": iso(started + timedelta(milliseconds=400 * seq)),
                "durationMs": 120 * seq,
                "attempts": 2 if failed else 1,
                "output": {"text": "Order A-17"} if kind == "action.waitForText" and not failed else {},
            }
        )
    body: dict[str, Any] = {
        "id": run_id,
        "workflowId": workflow_id,
        "workflowVersionId": version_id,
        "status": status,
        "trigger": "device",
        "inputs": {"order": "A-17"},
        "startedAt": iso(started),
        "trace": trace,
    }
    if status in ("success", "failed"):
        body.update(
            endedAt=iso(started + timedelta(milliseconds=400 * (steps + 1))),
            durationMs=400 * (steps + 1),
            nSteps=steps,
            nFailed=1 if status == "failed" else 0,
            nRetries=1 if status == "failed" else 0,
        )
    if status == "failed":
        body["errorMessage"] = failed_message
    return body


def report(
    client: httpx.Client, device: DeviceFixture, workflow: WorkflowFixture, run_id: str, **fields: Any
) -> None:
    """One runs.report of a run of `workflow` by `device`, which the server must store."""
    body = run_report(run_id, workflow.id, workflow.version_id, **fields)
    answer = client.post("/api/v1/runs.report", json={"runs": [body]}, headers=auth(device.token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["runs"][0]["result"] == "stored", answer.text


def account_state(db: Db, account_id: str) -> dict[str, Any]:
    """Every row a dashboard form can change for this account, to compare before and after."""
    queries = {
        "account": "SELECT plan, run_retention_days FROM accounts WHERE id = :a",
        "tokens": "SELECT id, name, revoked_at FROM api_tokens WHERE account_id = :a ORDER BY id",
        "devices": "SELECT id, name, revoked_at FROM devices WHERE account_id = :a ORDER BY id",
        "denylist": "SELECT id, pattern FROM denylist_entries WHERE account_id = :a ORDER BY id",
        "workflows": "SELECT id, name, published_version_id FROM workflows WHERE account_id = :a ORDER BY id",
        "versions": "SELECT id FROM workflow_versions WHERE account_id = :a ORDER BY id",
        "pairing": "SELECT id FROM pairing_codes WHERE account_id = :a ORDER BY id",
        "sessions": "SELECT id_hash FROM dashboard_sessions WHERE account_id = :a ORDER BY id_hash",
        "schedules": "SELECT id, cron, enabled, device_id FROM schedules WHERE account_id = :a ORDER BY id",
    }
    with db.engine.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(text(sql), {"a": account_id})]
            for name, sql in queries.items()
        }


def retention_days(db: Db, account_id: str) -> int:
    with db.session_factory() as session:
        return session.scalars(select(Account.run_retention_days).where(Account.id == account_id)).one()


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn on a free port of 127.0.0.1 in a thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the test server at {base_url} did not come up within 30 s")
            time.sleep(0.1)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
