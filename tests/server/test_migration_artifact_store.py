"""Migration 0019: artifacts stored in the database before the artifact store keep being served,
count for their account, and move into the store (both stores) without a byte lost."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

import server.models  # noqa: F401  (every table in the metadata)
from server.app import create_app
from server.artifact_store import ArtifactStore, store_from_settings
from server.artifact_store.service import move_database_blobs
from server.db import make_session_factory, utcnow
from server.migrate import upgrade
from server.runs.models import Artifact
from server.settings import Settings
from tests.server.conftest import in_new_bucket
from tests.server.factories import Db, auth, create_account_in_an_old_schema, create_device, create_workflow
from tests.server.test_migration_input_values import _as_of_then, _old_run, empty_engine  # noqa: F401

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
XML = b'<?xml version="1.0"?><hierarchy/>'


@pytest.mark.parametrize("store_kind", ["directory", "s3"])
def test_old_artifacts_are_served_then_moved_into_the_store(
    empty_engine: Engine,  # noqa: F811  (the fixture imported above)
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    upgrade(empty_engine, "0018_run_frames")
    db = Db(
        url=empty_engine.url.render_as_string(hide_password=False),
        kind=empty_engine.dialect.name,
        engine=empty_engine,
        session_factory=make_session_factory(empty_engine),
    )
    acc = create_account_in_an_old_schema(db)
    dev, wf = create_device(db, acc.id), create_workflow(db, acc.id)
    run_id, now = str(uuid.uuid4()), utcnow()
    with db.session_factory.begin() as session:  # Core with 0018's columns
        session.execute(_old_run(run_id, acc.id, wf, now, device_id=dev.id))
        for name, content_type, data in (
            ("shot.png", "image/png", PNG),
            ("window.xml", "application/xml", XML),
        ):
            session.execute(
                _as_of_then(
                    Artifact.__tablename__,
                    run_id=run_id,
                    name=name,
                    content_type=content_type,
                    size=len(data),
                    data=data,
                    created_at=now,
                )
            )
    upgrade(empty_engine)
    with db.session_factory() as session:
        rows = session.scalars(select(Artifact).order_by(Artifact.name)).all()
        assert [(r.account_id, r.store_key, r.data) for r in rows] == [
            (acc.id, None, PNG),
            (acc.id, None, XML),
        ]

    settings = Settings(database_url=db.url, run_migrations=False, start_scheduler=False)
    if store_kind == "directory":
        settings = settings.model_copy(update={"artifact_dir": tmp_path / "artifacts"})
    else:
        settings = in_new_bucket(settings, request.getfixturevalue("s3_endpoint"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        store: ArtifactStore = client.app.state.artifact_store

        def served() -> tuple[bytes, bytes, int]:
            png = client.get(f"/api/v1/runs/{run_id}/artifacts/shot.png", headers=auth(acc.token))
            xml = client.get(f"/api/v1/runs/{run_id}/artifacts/window.xml", headers=auth(acc.token))
            used = client.get("/api/v1/account", headers=auth(acc.token)).json()["artifactBytesUsed"]
            return png.content, xml.content, used

        assert served() == (PNG, XML, len(PNG) + len(XML))  # from the database, until moved
        assert move_database_blobs(client.app.state.session_factory, store, batch_size=1) == 2
        assert move_database_blobs(client.app.state.session_factory, store) == 0
        with db.session_factory() as session:
            rows = session.scalars(select(Artifact).order_by(Artifact.name)).all()
            assert [r.data for r in rows] == [None, None]
            keys = [r.store_key for r in rows]
        assert [store.get(str(k)) for k in keys] == [PNG, XML]
        assert served() == (PNG, XML, len(PNG) + len(XML))
    assert store_from_settings(settings).describe() == store.describe()
