"""Server test fixtures: every server test runs on SQLite and on PostgreSQL.

`db_url` is parametrized over a SQLite file in tmp_path and a schema in the PostgreSQL at
PHONEFLOW_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test). Both are
built by the migrations once per session (a SQLite template file that each test copies;
a PostgreSQL schema of this session that is emptied before each test), so every test
starts from a migrated, empty database. PostgreSQL is skipped only when it cannot be reached, and the
skip says why. Factories live in tests/server/factories.py.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from server.app import create_app
from server.artifact_store import store_from_settings
from server.artifact_store.service import use_store
from server.db import make_engine, make_session_factory, normalise_url
from server.migrate import upgrade
from server.settings import Settings
from tests.server.factories import Db

PG_URL = os.environ.get("PHONEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def postgres_unreachable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (for the skip message)."""
    engine = make_engine(PG_URL, connect_args={"connect_timeout": 3}, pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: skip, saying why
        return f"PostgreSQL at {PG_URL} cannot be reached: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{normalise_url(url)}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file built by the migrations once per test session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists(), "the template's WAL was not checkpointed"
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A schema of this test session in PostgreSQL, built by the migrations once, dropped at the end."""
    reason = postgres_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(PG_URL, pool_pre_ping=False)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(PG_URL, schema)
    try:
        engine = make_engine(url, pool_pre_ping=False)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _empty_postgres(url: str) -> None:
    """Every table emptied (sequences restarted), the migrated schema kept: a fresh database, fast."""
    engine = make_engine(url, pool_pre_ping=False)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            tables = (
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
                    )
                )
                .scalars()
                .all()
            )
            if tables:
                conn.exec_driver_sql(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
    finally:
        engine.dispose()


DB_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def empty_database_url(request: pytest.FixtureRequest, kind: str, folder: Path) -> str:
    """A migrated, empty database of `kind`: a copy of the SQLite template in `folder`, or this test
    session's PostgreSQL schema emptied."""
    if kind == "sqlite":
        path = folder / "phoneflow.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    _empty_postgres(url)
    return url


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a copy of the SQLite template, or the emptied PostgreSQL schema."""
    return empty_database_url(request, request.param, tmp_path)


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    """The database at `db_url` (schema built by the migrations, no rows); its sessions know the
    artifact store of `settings` (the default one)."""
    engine = make_engine(db_url)
    session_factory = make_session_factory(engine)
    # The artifact store of the default test settings (its folder in the session's data folder).
    use_store(session_factory, store_from_settings(Settings(database_url=db_url)))
    try:
        yield Db(url=db_url, kind=engine.dialect.name, engine=engine, session_factory=session_factory)
    finally:
        engine.dispose()


@pytest.fixture
def denylist_file(tmp_path: Path) -> Path:
    path = tmp_path / "denylist.txt"
    path.write_text("# the global denylist of the test server\ncom.bank.*\ncom.evil.app\n", encoding="utf-8")
    return path


PRIVATE_TARGETS_ENV = {"PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}


@pytest.fixture
def settings(db: Db, denylist_file: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for a test app on `db` (schema already built; no background jobs). A test marked
    `private_targets` (its webhook receivers listen on 127.0.0.1) lets webhooks reach loopback and
    private addresses; the others have the default (refused)."""
    return Settings(
        database_url=db.url,
        denylist_file=denylist_file,
        run_migrations=False,
        start_scheduler=False,
        max_body_bytes=64 * 1024,
        webhook_allow_private_targets=request.node.get_closest_marker("private_targets") is not None,
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client on the app (lifespan run), raising nothing on 5xx so tests can check them."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-protocol server on a free 127.0.0.1 port (moto's server mode: the real wire protocol)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["directory", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    """`settings` with the artifact store in a folder of this test, or in a fresh bucket of the S3 server."""
    if request.param == "directory":
        folder = tmp_path / "artifacts"
        return settings.model_copy(update={"artifact_store": "directory", "artifact_dir": folder})
    return in_new_bucket(settings, request.getfixturevalue("s3_endpoint"))


def in_new_bucket(settings: Settings, endpoint: str) -> Settings:
    """`settings` with the artifact store in a new bucket of the S3 server at `endpoint`."""
    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    update = {
        "artifact_store": "s3",
        "s3_endpoint_url": endpoint,
        "s3_bucket": bucket,
        "s3_region": "us-east-1",
        "s3_access_key_id": "phoneflow-test",
        "s3_secret_access_key": SecretStr("phoneflow-test-secret"),
    }
    configured = settings.model_copy(update=update)
    from server.artifact_store.s3 import S3Store

    store = store_from_settings(configured)
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket=bucket)
    return configured
