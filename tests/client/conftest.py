"""The API CLI against a real server: uvicorn in a child process on SQLite and on PostgreSQL.

`served` starts the server on the `db` fixture's database (both kinds) with an account; `cli`
runs a `phoneflow` command in-process, signed in through PHONEFLOW_SERVER / PHONEFLOW_TOKEN
unless the test signs in itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from phoneflow.cli import app
from tests.bridge.server_process import ServerProcess, start_server
from tests.server.conftest import db, db_url, pg_schema_url, sqlite_template  # noqa: F401 - fixtures
from tests.server.factories import Db


@pytest.fixture
def served(db: Db, tmp_path: Path) -> Iterator[ServerProcess]:  # noqa: F811 - the fixture above
    # the database is migrated already: the server need not wait for the migration lock
    server = start_server(tmp_path / "server", db.url, PHONEFLOW_RUN_MIGRATIONS="false")
    try:
        yield server
    finally:
        server.stop()


class Cli:
    """`phoneflow ...` in this process, as the served account (or with the env given)."""

    def __init__(self, server: ServerProcess, config_dir: Path) -> None:
        self.server = server
        self.env = {
            "PHONEFLOW_SERVER": server.url,
            "PHONEFLOW_TOKEN": server.account.token,
            "PHONEFLOW_CONFIG_DIR": str(config_dir),
            "COLUMNS": "200",
        }

    def __call__(self, *args: str, env: dict[str, Any] | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env={**self.env, **(env or {})}, input=input)


@pytest.fixture
def cli(served: ServerProcess, tmp_path: Path) -> Cli:
    return Cli(served, tmp_path / "config")
