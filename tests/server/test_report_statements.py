"""What one small runs.report costs the database: the statements of a phone's report at every step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from server.runs.models import Run, RunEvent
from server.runs.service import summary_json
from server.webhooks.models import WebhookDelivery
from tests.server.factories import Db, auth, create_account, create_device, create_workflow
from tests.server.runs_support import new_run_id, run_report


@contextmanager
def _statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL the app's engine runs meanwhile."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_version_is_looked_up_once_per_account_and_process(client: TestClient, db: Db) -> None:
    acc, other = create_account(db), create_account(db, email="other@example.com")
    dev, stranger = create_device(db, acc.id), create_device(db, other.id)
    wf = create_workflow(db, acc.id)

    def report(token: str) -> tuple[str, list[str]]:
        with _statements(client) as seen:
            response = client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(new_run_id(), wf, steps=2)]},
                headers=auth(token),
            )
        assert response.status_code == 200, response.text
        return response.json()["runs"][0]["result"], [s for s in seen if "workflow_versions" in s]

    result, lookups = report(dev.token)
    assert (result, len(lookups)) == ("stored", 1)
    assert report(dev.token) == ("stored", [])  # known in this process: no query
    result, lookups = report(stranger.token)  # another account's device naming it: asked, and refused
    assert (result, len(lookups)) == ("rejected", 1)


def test_webhooks_are_looked_up_only_for_accounts_that_have_endpoints(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)

    def end_a_run() -> list[str]:
        with _statements(client) as seen:
            response = client.post(
                "/api/v1/runs.report",
                json={"runs": [run_report(new_run_id(), wf, status="success", steps=1)]},
                headers=auth(dev.token),
            )
        assert response.json()["runs"][0]["result"] == "stored", response.text
        return [s for s in seen if " ".join(s.split()).startswith("SELECT webhook_endpoints.")]

    def deliveries() -> int:
        with db.session_factory() as session:
            return session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0

    assert end_a_run() == []  # none: known from the device's statement
    made = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/in", "events": ["run.finished"]},
        headers=auth(acc.token),
    )
    assert made.status_code == 201, made.text
    assert len(end_a_run()) == 1
    assert deliveries() == 1
    disabled = client.patch(
        f"/api/v1/webhooks/{made.json()['id']}", json={"enabled": False}, headers=auth(acc.token)
    )
    assert disabled.status_code == 200, disabled.text
    assert end_a_run() == []
    assert deliveries() == 1


def test_run_updated_of_a_new_run_is_its_row_as_read_back(client: TestClient, db: Db) -> None:
    # runs.report writes run.updated from the rows its INSERT returned instead of reading them again.
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    rid, twice = new_run_id(), new_run_id()
    runs = [
        run_report(rid, wf, status="success", steps=2, inputs={"order": "A-1"}),
        run_report(twice, wf, steps=1),
        run_report(twice, wf, steps=3),  # the same run again in the batch: moved after its insert
    ]
    with _statements(client) as seen:
        response = client.post("/api/v1/runs.report", json={"runs": runs}, headers=auth(dev.token))
    assert [r["result"] for r in response.json()["runs"]] == ["stored", "stored", "stored"]
    assert any(" ".join(s.split()).startswith("SELECT runs.") for s in seen)  # `twice` read again
    with db.session_factory() as session:
        for run_id in (rid, twice):
            payloads = session.scalars(
                select(RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
            ).all()
            row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
            assert [p if isinstance(p, dict) else json.loads(p) for p in payloads] == [summary_json(row)]
