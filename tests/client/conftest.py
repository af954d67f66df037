"""The API CLI against a real server: uvicorn in a child process on SQLite and on PostgreSQL.

One server per test module and database kind (starting one costs seconds); `served` is that server
as a fresh account of each test's own, so tests see none of each other's workflows, runs or
devices. `cli` runs a `phoneflow` command in-process, signed in through PHONEFLOW_SERVER /
PHONEFLOW_TOKEN unless the test signs in itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from client import output
from phoneflow.cli import app
from tests.bridge.server_process import ServerProcess, start_server
from tests.server.conftest import (  # noqa: F401 - fixtures
    DB_KINDS,
    empty_database_url,
    pg_schema_url,
    sqlite_template,
)
from tests.server.factories import create_account


@pytest.fixture(scope="module", params=DB_KINDS)
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp(f"served-{request.param}")
    url = empty_database_url(request, request.param, folder)
    # the database is migrated already: the server need not wait for the migration lock
    server = start_server(folder / "server", url, PHONEFLOW_RUN_MIGRATIONS="false")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(module_server: ServerProcess) -> ServerProcess:
    """The module's server process, as an account made for this test."""
    return dataclasses.replace(module_server, account=create_account(module_server.db))


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
        called_with = {**self.env, **(env or {})}
        # The CLI's consoles are made once per process (client/output.py), with the width of the
        # terminal or COLUMNS of that moment; a command of its own process sees its own. Here many
        # commands share this process, so each is given the width a process of its own would have.
        width = int(called_with["COLUMNS"])
        for console in (output.out, output.err):
            console.width = width
        return CliRunner().invoke(app, list(args), env=called_with, input=input)


@pytest.fixture
def cli(served: ServerProcess, tmp_path: Path) -> Cli:
    return Cli(served, tmp_path / "config")
