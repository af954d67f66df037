"""Migrations that index what is already stored: 0007 the input values of runs (as new runs are
indexed), 0012 the analytics' daily rollup of ended runs and their failed steps; and 0027, which keeps
the stored trace events while their foreign key gives way to a trigger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Insert, column, insert, table, text

import server.models  # noqa: F401  (every table in the metadata)
from server.db import Base, make_engine, make_session_factory, utcnow
from server.migrate import upgrade
from server.runs.models import Run, TraceEventRow, input_values
from server.workflows.models import Workflow, WorkflowVersion
from tests.server.conftest import PG_URL, _with_search_path, postgres_unreachable_reason
from tests.server.factories import Db, create_account_in_an_old_schema, sample_definition

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


def _as_of_then(table_name: str, **values: Any) -> Insert:
    """An insert of just these columns: the model's defaults for later columns must not be sent
    to a database migrated only as far as the rows are old."""
    model_table = Base.metadata.tables[table_name]
    columns = [column(name, model_table.c[name].type) for name in values]
    return insert(table(table_name, *columns)).values(**values)


def _old_run(run_id: str, account_id: str, workflow: Any, now: Any, **values: Any) -> Insert:
    """`_as_of_then` of a run of `workflow` in an old schema (0018 on): an ended device run unless
    `values` say otherwise (`device_id`, `status`, ...)."""
    row = {
        "id": run_id,
        "account_id": account_id,
        "workflow_id": workflow.id,
        "workflow_version_id": workflow.version_id,
        "status": "success",
        "status_rank": 2,
        "trigger": "device",
        "inputs": {},
        "trace_len": 0,
        "created_at": now,
        "updated_at": now,
    }
    return _as_of_then(Run.__tablename__, **{**row, **values})


def test_existing_runs_inputs_are_indexed_like_new_ones(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0006_device_bridge_health")
    db = Db(
        url=str(empty_engine.url),
        kind=empty_engine.dialect.name,
        engine=empty_engine,
        session_factory=make_session_factory(empty_engine),
    )
    account = create_account_in_an_old_schema(db)
    workflow_id, version_id = str(uuid.uuid4()), str(uuid.uuid4())
    run_id = str(uuid.uuid4())
    now = utcnow()
    with db.session_factory.begin() as session:  # Core with 0006's columns: later ones are not there yet
        session.execute(
            _as_of_then(
                Workflow.__tablename__,
                id=workflow_id,
                account_id=account.id,
                name="Open the shop",
                created_at=now,
                updated_at=now,
                latest_version_number=1,
            )
        )
        session.execute(
            _as_of_then(
                WorkflowVersion.__tablename__,
                id=version_id,
                workflow_id=workflow_id,
                account_id=account.id,
                number=1,
                definition=sample_definition(),
                problems=[],
                created_at=now,
            )
        )
    with (
        db.session_factory.begin() as session
    ):  # a run stored before the index existed (Core: 0005's columns)
        session.execute(
            _as_of_then(
                Run.__tablename__,
                id=run_id,
                account_id=account.id,
                workflow_id=workflow_id,
                workflow_version_id=version_id,
                status="failed",
                status_rank=2,
                duration_ms=4200,
                trigger="device",
                inputs=INPUTS,
                trace_len=0,
                created_at=now,
                updated_at=now,
            )
        )
        for seq, outcome in ((1, "ok"), (2, "failed")):
            session.execute(
                _as_of_then(
                    TraceEventRow.__tablename__,
                    run_id=run_id,
                    seq=seq,
                    event={
                        "seq": seq,
                        "nodeId": "open" if seq == 1 else "pay",
                        "kind": "action.tapByText",
                        "outcome": outcome,
                        "message": "no element with text 'Pay' on screen" if outcome == "failed" else None,
                        "startedAt": f"2026-11-23T10:00:0{seq}.250Z",
                        "durationMs": 80,
                        "attempts": 1,
                        "output": {},
                    },
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
    with empty_engine.connect() as conn:
        rollup = conn.execute(
            text(
                "SELECT dimension, day, status, runs, timed, duration_sum FROM run_daily_stats "
                "ORDER BY dimension"
            )
        ).all()
        failures = conn.execute(
            text("SELECT run_id, seq, node_id, kind, message, at FROM run_step_failures")
        ).all()
    assert [tuple(row) for row in rollup] == [
        ("device", now.date().isoformat(), "failed", 1, 1, 4200),
        ("workflow", now.date().isoformat(), "failed", 1, 1, 4200),
    ]
    assert len(failures) == 1
    assert (failures[0].run_id, failures[0].seq, failures[0].node_id, failures[0].message) == (
        run_id,
        2,
        "pay",
        "no element with text 'Pay' on screen",
    )
    assert str(failures[0].at).startswith("2026-11-23 10:00:02")
    # 0027: the events stored before it are kept (SQLite copies the table) and go with their run.
    with empty_engine.begin() as conn:
        seqs = conn.execute(
            text("SELECT seq FROM trace_events WHERE run_id = :r ORDER BY seq"), {"r": run_id}
        )
        assert list(seqs.scalars()) == [1, 2]
        conn.execute(text("DELETE FROM runs WHERE id = :r"), {"r": run_id})
        assert conn.execute(text("SELECT count(*) FROM trace_events")).scalar() == 0
