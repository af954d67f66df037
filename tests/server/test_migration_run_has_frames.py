"""Migration 0028: runs stored before it know whether they have frames (`runs.has_frames`), from their
artifacts (a `frame-SEQ.jpg`/`.webp` with its meta), and the runs written the old way get false."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, select, text

import server.models  # noqa: F401  (every table in the metadata)
from server.db import make_session_factory, utcnow
from server.migrate import upgrade
from server.runs.models import Artifact, Run
from tests.server.factories import Db, create_account_in_an_old_schema, create_device, create_workflow
from tests.server.test_migration_input_values import _as_of_then, _old_run, empty_engine  # noqa: F401

FRAME_META = {"seq": 1, "nodeId": "n1", "kind": "action.tapByText", "outcome": "ok", "bounds": None}


def test_runs_with_frame_artifacts_are_flagged(empty_engine: Engine) -> None:  # noqa: F811
    upgrade(empty_engine, "0027_trace_events_without_fk")
    db = Db(
        url=empty_engine.url.render_as_string(hide_password=False),
        kind=empty_engine.dialect.name,
        engine=empty_engine,
        session_factory=make_session_factory(empty_engine),
    )
    acc = create_account_in_an_old_schema(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    now = utcnow()
    # Each run's artifacts: (name, meta); None is the JSON null an upload without meta stores.
    artifacts: dict[str, list[tuple[str, Any]]] = {
        "jpg frame": [("frame-00001.jpg", FRAME_META), ("shot.png", None)],
        "webp frame": [("frame-00000.webp", {**FRAME_META, "seq": 0})],
        "screenshots only": [("shot.png", None), ("frame-00001.jpg", None), ("window.xml", None)],
        "phone video only": [("video.mp4", {"source": "phone"})],
        "not quite a frame": [("frame-1.jpg", FRAME_META), ("frame-00001.png", FRAME_META)],
        "no artifacts": [],
    }
    ids = {case: str(uuid.uuid4()) for case in artifacts}
    with db.session_factory.begin() as session:  # Core with 0027's columns
        for case, run_id in ids.items():
            session.execute(_old_run(run_id, acc.id, wf, now, device_id=dev.id))
            for name, meta in artifacts[case]:
                session.execute(
                    _as_of_then(
                        Artifact.__tablename__,
                        run_id=run_id,
                        account_id=acc.id,
                        name=name,
                        content_type="image/jpeg",
                        size=3,
                        store_key=f"{acc.id}/{run_id}/{uuid.uuid4().hex}",
                        meta=meta,
                        created_at=now,
                    )
                )
    upgrade(empty_engine)
    with db.session_factory() as session:
        flagged = {row.id: row.has_frames for row in session.execute(select(Run.id, Run.has_frames))}
    assert {case: flagged[run_id] for case, run_id in ids.items()} == {
        "jpg frame": True,
        "webp frame": True,
        "screenshots only": False,
        "phone video only": False,
        "not quite a frame": False,
        "no artifacts": False,
    }

    later = str(uuid.uuid4())  # a run written naming only the old columns: false by the server's default
    with db.session_factory.begin() as session:
        session.execute(_old_run(later, acc.id, wf, now, status="running", status_rank=1))
    with empty_engine.connect() as conn:
        stored = conn.execute(text("SELECT has_frames FROM runs WHERE id = :r"), {"r": later}).scalar()
    assert stored in (False, 0)
