"""A claim under an empty denylist: on PostgreSQL one statement (server/runs/claim_at_once.py) that must
answer and record exactly what the general way does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from server.app import create_app
from server.runs.models import Run, RunEvent
from server.runs.service import summary_json
from server.settings import Settings
from tests.server.factories import Db, auth, create_account, create_device, create_workflow


@contextmanager
def _statements(client: TestClient) -> Iterator[list[str]]:
    """The statements run meanwhile: through SQLAlchemy, and those sent to psycopg as they are."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    real = psycopg.Connection.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, str):
            seen.append(" ".join(query.split()))
        return real(self, query, *args, **kwargs)

    event.listen(engine, "before_cursor_execute", record)
    psycopg.Connection.execute = execute  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Connection.execute = real  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", record)


def _last_payload(db: Db, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with db.session_factory() as session:
        payload = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == run_id).order_by(RunEvent.id.desc())
        ).first()
        row = session.execute(select(Run.__table__).where(Run.__table__.c.id == run_id)).one()
    assert payload is not None
    return (payload if isinstance(payload, dict) else json.loads(payload)), summary_json(row)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test app without a global denylist (the suite's has one): claims may take the one statement."""
    with TestClient(create_app(settings.model_copy(update={"denylist_file": None}))) as client:
        yield client


def test_a_claim_answers_and_records_the_run_as_stored(client: TestClient, db: Db) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    postgres = db.engine.dialect.name == "postgresql"
    with _statements(client) as seen:
        assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204
    if postgres:  # nothing queued: the one statement says so, no second look
        assert len([s for s in seen if "FROM runs" in s]) == 1, seen
    inputs = {"order": "A-7", "note": "x\\y\ttab é"}
    queued = client.post(
        f"/api/v1/workflows/{wf.id}/runs",
        json={"deviceId": dev.id, "inputs": inputs},
        headers=auth(acc.token),
    )
    assert queued.status_code == 201, queued.text
    with _statements(client) as seen:
        claimed = client.post("/api/v1/devices/me/claim", json={"lease": True}, headers=auth(dev.token))
    assert claimed.status_code == 200, claimed.text
    run = claimed.json()["run"]
    payload, stored = _last_payload(db, run["id"])
    assert payload == stored == run
    assert (run["status"], run["inputs"], run["deviceId"]) == ("running", inputs, dev.id)
    assert claimed.json()["leaseMs"] > 0
    with db.session_factory() as session:
        lease_until = session.scalar(select(Run.lease_until).where(Run.id == run["id"]))
    assert lease_until is not None
    if postgres:
        assert not [s for s in seen if s.startswith("INSERT INTO run_events")]  # written by the claim

    # A denylist entry of the account: the claim goes the general way (it may refuse), the same answer.
    added = client.post("/api/v1/denylist", json={"pattern": "com.casino.*"}, headers=auth(acc.token))
    assert added.status_code in (200, 201), added.text
    again = client.post(f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token))
    assert again.status_code == 201, again.text
    with _statements(client) as seen:
        second = client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
    assert second.status_code == 200, second.text
    assert second.json()["run"]["id"] == again.json()["id"]
    payload, stored = _last_payload(db, again.json()["id"])
    assert payload == stored == second.json()["run"]
    assert not [s for s in seen if s.startswith("WITH pick")]


def test_under_a_denylist_a_version_once_allowed_is_claimed_at_once_until_the_list_changes(
    settings: Settings, db: Db
) -> None:
    acc = create_account(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)  # its app: com.example.shop
    postgres = db.engine.dialect.name == "postgresql"
    with TestClient(create_app(settings)) as client:  # the suite's global denylist: com.bank.*, ...

        def claim() -> tuple[str, list[str]]:
            queued = client.post(
                f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
            )
            assert queued.status_code == 201, queued.text
            with _statements(client) as seen:
                answer = client.post("/api/v1/devices/me/claim", headers=auth(dev.token))
            assert answer.status_code == 200, answer.text
            run = answer.json()["run"]
            assert run["id"] == queued.json()["id"]
            payload, stored = _last_payload(db, run["id"])
            assert payload == stored == run
            return run["status"], [s[:9] for s in seen if s.startswith("WITH pick")]

        # The first run of the version is looked at (and its version found allowed) the general way.
        assert claim() == ("running", [])
        # Now known: one statement on PostgreSQL.
        assert claim() == ("running", ["WITH pick"] if postgres else [])

        # Another denylist (an entry of the account's): what was known is not trusted; looked at again.
        entry = client.post("/api/v1/denylist", json={"pattern": "com.other.*"}, headers=auth(acc.token))
        assert entry.status_code in (200, 201), entry.text
        assert claim() == ("running", [])
        assert claim() == ("running", ["WITH pick"] if postgres else [])

        # A run queued before its app was denied is refused at its claim, not handed out.
        queued = client.post(
            f"/api/v1/workflows/{wf.id}/runs", json={"deviceId": dev.id}, headers=auth(acc.token)
        )
        assert queued.status_code == 201, queued.text
        denied = client.post("/api/v1/denylist", json={"pattern": "com.example.*"}, headers=auth(acc.token))
        assert denied.status_code in (200, 201), denied.text
        assert client.post("/api/v1/devices/me/claim", headers=auth(dev.token)).status_code == 204
        with db.session_factory() as session:
            assert session.scalar(select(Run.status).where(Run.id == queued.json()["id"])) == "failed"
