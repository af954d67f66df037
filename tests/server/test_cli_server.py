from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from phoneflow.cli import app as phoneflow
from server.app import create_app
from server.db import make_engine
from server.migrate import SchemaTooNew, alembic_config, upgrade
from server.settings import Settings
from tests.server.factories import Db, auth

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_admin_create_account_prints_the_token_once(db: Db) -> None:
    runner = CliRunner()
    result = runner.invoke(
        phoneflow, ["admin", "create-account", "Ops@Example.com", "--plan", "pro", "--database-url", db.url]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("pf_acc_")
    again = runner.invoke(phoneflow, ["admin", "create-account", "ops@example.com", "--database-url", db.url])
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    second = runner.invoke(phoneflow, ["admin", "create-token", "ops@example.com", "--database-url", db.url])
    assert second.exit_code == 0, second.output
    assert second.stdout.strip().startswith("pf_acc_")
    assert second.stdout.strip() != token
    not_email = runner.invoke(phoneflow, ["admin", "create-account", "ops", "--database-url", db.url])
    assert not_email.exit_code == 1
    assert "not an email address" in not_email.stderr
    missing = runner.invoke(
        phoneflow, ["admin", "create-token", "nobody@example.com", "--database-url", db.url]
    )
    assert missing.exit_code == 1
    assert "create-account" in missing.stderr


@pytest.fixture
def served(db: Db, tmp_path: Path) -> Iterator[str]:
    """`phoneflow serve` as a real process on a free port, on the test database."""
    port = _free_port()
    denylist = tmp_path / "deny.txt"
    denylist.write_text("com.bank.*\n", encoding="utf-8")
    env = {**os.environ, "PHONEFLOW_START_SCHEDULER": "false"}
    command = [sys.executable, "-m", "phoneflow", "serve", "--port", str(port), "--database-url", db.url]
    process = subprocess.Popen(
        [*command, "--denylist", str(denylist)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"phoneflow serve did not come up:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        status = process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
    assert status == 0  # SIGTERM stops it gracefully (it was the signal's -15 before)


def test_serve_answers_with_an_admin_made_token(served: str, db: Db) -> None:
    created = CliRunner().invoke(
        phoneflow, ["admin", "create-account", "a@example.com", "--database-url", db.url]
    )
    token = created.stdout.strip().splitlines()[-1]
    r = httpx.get(f"{served}/api/v1/account", headers={**auth(token), "X-Request-ID": "cli-test-1"})
    assert r.status_code == 200
    assert r.json()["email"] == "a@example.com"
    assert r.headers["x-request-id"] == "cli-test-1"
    deny = httpx.get(f"{served}/api/v1/denylist", headers=auth(token)).json()
    assert deny["globalEntries"] == ["com.bank.*"]


def test_serve_refuses_a_bad_denylist_file(tmp_path: Path) -> None:
    missing = CliRunner().invoke(phoneflow, ["serve", "--denylist", str(tmp_path / "nope.txt")])
    assert missing.exit_code != 0
    # The error box wraps at the terminal's width, anywhere in a long tmp_path: compare without spaces.
    unwrapped = "".join(missing.output.replace("│", " ").split())
    assert "nope.txt'doesnotexist" in unwrapped
    bad = tmp_path / "bad.txt"
    bad.write_text("com bank app\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "phoneflow", "serve", "--denylist", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "not a package name or glob" in result.stderr


def test_a_database_from_a_newer_phoneflow_is_refused_with_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'phoneflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    command = ["admin", "create-account", "a@example.com", "--database-url", url]
    result = CliRunner().invoke(phoneflow, command)
    assert result.exit_code == 1
    assert "schema revision 9999_future" in result.stderr
    assert "newer phoneflow" in result.stderr
    assert "Traceback" not in result.output
    # The server refuses to start on it too, with the same words.
    settings = Settings(database_url=url, start_scheduler=False)
    with pytest.raises(SchemaTooNew, match="9999_future"), TestClient(create_app(settings)):
        pass
    # And `serve` told not to upgrade it (it used to serve on it).
    served = _serve_without_migrations(url, tmp_path)
    assert served.returncode == 1
    assert "schema revision 9999_future" in served.stderr


def _serve_without_migrations(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`phoneflow serve` with PHONEFLOW_RUN_MIGRATIONS=false on `url`, expected to refuse at once."""
    env = {**os.environ, "PHONEFLOW_RUN_MIGRATIONS": "false", "PHONEFLOW_START_SCHEDULER": "false"}
    command = [sys.executable, "-m", "phoneflow", "serve", "--port", str(_free_port()), "--database-url", url]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_serve_told_not_to_upgrade_an_older_schema_says_how_to(tmp_path: Path) -> None:
    """PHONEFLOW_RUN_MIGRATIONS=false on a database the migrations have not reached: one line saying
    how to upgrade it (it said to check the URL and that the database is running)."""
    url = f"sqlite:///{tmp_path / 'phoneflow.db'}"
    engine = make_engine(url)
    scripts = ScriptDirectory.from_config(alembic_config())
    newest = scripts.get_revision(scripts.get_current_head() or "")
    assert newest is not None
    assert isinstance(newest.down_revision, str)
    upgrade(engine, newest.down_revision)  # one revision short of the newest
    engine.dispose()
    result = _serve_without_migrations(url, tmp_path)  # it used to serve on it
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "older than this phoneflow's" in lines[0]
    assert "starting phoneflow serve once without PHONEFLOW_RUN_MIGRATIONS=false" in lines[0]
    assert "serving on" not in result.stdout + result.stderr


def test_an_unusable_database_url_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'phoneflow.db'}"
    command = ["admin", "create-account", "a@example.com", "--database-url", url]
    result = CliRunner().invoke(phoneflow, command)
    assert result.exit_code == 1
    assert "cannot use the database" in result.stderr
    assert "--database-url" in result.stderr
    assert "Traceback" not in result.output
