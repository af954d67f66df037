"""What one small runs.report costs the database: the statements of a phone's report at every step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

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
