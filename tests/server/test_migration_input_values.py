"""Migration 0006 indexes the input values of the runs already stored, as new runs are indexed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from server.db import make_engine, make_session_factory, utcnow
from server.migrate import upgrade
from server.runs.models import Run, input_values
from tests.server.conftest import PG_URL, _with_search_path, postgres_unreachable_reason
from tests.server.factories import Db, create_account, create_workflow

INPUTS = {"order": "  A-17 ", "qty": 3, "rush": True, "price": 2.5, "empty": "", "nested": {"x": 1}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no schema yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    reason = postgres_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"t_mig_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, pool_pre_ping=False)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(_with_search_path(PG_URL, schema), pool_pre_ping=False)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_existing_runs_inputs_are_indexed_like_new_ones(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0005_approvals")
    db = Db(
        url=str(empty_engine.url),
        kind=empty_engine.dialect.name,
        engine=empty_engine,
        session_factory=make_session_factory(empty_engine),
    )
    account = create_account(db)
    workflow = create_workflow(db, account.id)
    run_id = str(uuid.uuid4())
    now = utcnow()
    with db.session_factory.begin() as session:  # a run stored before the index existed
        session.add(
            Run(
                id=run_id,
                account_id=account.id,
                workflow_id=workflow.id,
                workflow_version_id=workflow.version_id,
                status="success",
                status_rank=2,
                trigger="device",
                inputs=INPUTS,
                trace_len=0,
                created_at=now,
                updated_at=now,
            )
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        stored = set(
            conn.execute(
                text("SELECT value FROM run_input_values WHERE run_id = :r"), {"r": run_id}
            ).scalars()
        )
    assert stored == set(input_values(INPUTS)) == {"a-17", "3", "true", "2.5"}
