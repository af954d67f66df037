"""A newcomer's first minutes with `phoneflow serve` and `phoneflow admin`, as real processes.

One default database for every command wherever it runs; `serve` says where to go next, and a
database or port it cannot use is one line saying what to do; a pairing code from the CLI.
"""

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
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from phoneflow.cli import app as phoneflow
from server.app import create_app
from server.settings import Settings
from tests.server.factories import Db, auth

PHONEFLOW = [sys.executable, "-m", "phoneflow"]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "PHONEFLOW_DATA_DIR": str(data_dir), "PHONEFLOW_START_SCHEDULER": "false"}
    # The commands run in other folders: they import this tree's code, not the one installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    for name in ("PHONEFLOW_DATABASE_URL", "DATABASE_URL"):
        env.pop(name, None)
    return env


def _phoneflow(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PHONEFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False
    )


class Served:
    """`phoneflow serve` as a process: its URL and what it printed so far."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout_s: float = 60) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return "".join(self.lines)
        raise AssertionError(f"`phoneflow serve` never printed {text!r}:\n{''.join(self.lines)}")


@pytest.fixture
def serve_default(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str]]]:
    """`phoneflow serve` with no --database-url, run from a folder of its own."""
    env = _env(tmp_path / "data")
    where = tmp_path / "server-cwd"
    where.mkdir()
    port = _free_port()
    process = subprocess.Popen(
        [*PHONEFLOW, "serve", "--port", str(port)],
        cwd=where,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield Served(process, f"http://127.0.0.1:{port}"), env
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stdout is not None
        process.stdout.close()


def test_admin_and_serve_use_one_default_database_from_any_folder(
    serve_default: tuple[Served, dict[str, str]], tmp_path: Path
) -> None:
    served, env = serve_default
    banner = served.wait_for("phoneflow login --server")
    database = tmp_path / "data" / "phoneflow.db"
    assert f"database   sqlite:///{database} (0 accounts)" in banner
    assert f"dashboard  {served.url}/" in banner
    assert "next: phoneflow admin create-account you@example.com" in banner
    assert f"phoneflow login --server {served.url}" in banner

    elsewhere = tmp_path / "another-folder"
    elsewhere.mkdir()
    created = _phoneflow("admin", "create-account", "new@example.com", cwd=elsewhere, env=env)
    assert created.returncode == 0, created.stderr
    assert f"database: sqlite:///{database}" in created.stderr
    token = created.stdout.strip().splitlines()[-1]
    account = httpx.get(f"{served.url}/api/v1/account", headers=auth(token), timeout=10)
    assert account.status_code == 200, account.text
    assert account.json()["email"] == "new@example.com"
    # nothing was written where the commands ran
    assert not (elsewhere / ".phoneflow").exists()
    assert not (tmp_path / "server-cwd" / ".phoneflow").exists()


def test_an_existing_account_points_to_create_token(db: Db) -> None:
    runner = CliRunner()
    assert runner.invoke(phoneflow, ["admin", "create-account", "a@example.com", "--database-url", db.url])
    again = runner.invoke(phoneflow, ["admin", "create-account", "A@example.com", "--database-url", db.url])
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    assert "phoneflow admin create-token a@example.com" in again.stderr
    token = runner.invoke(phoneflow, ["admin", "create-token", "a@example.com", "--database-url", db.url])
    assert token.exit_code == 0, token.output
    assert token.stdout.strip().startswith("pf_acc_")
    assert "database: " in token.stderr


def test_admin_pairing_code_pairs_a_device(db: Db, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(phoneflow, ["admin", "create-account", "p@example.com", "--database-url", db.url])
    made = runner.invoke(
        phoneflow,
        [
            "admin",
            "pairing-code",
            "p@example.com",
            "--server",
            "http://phones:8000",
            "--database-url",
            db.url,
        ],
    )
    assert made.exit_code == 0, made.output
    code = made.stdout.strip()
    assert len(code) >= 6
    assert f"phoneflow bridge pair --server http://phones:8000 --code {code} --serial SERIAL" in made.stderr
    settings = Settings(database_url=db.url, run_migrations=False, start_scheduler=False)
    with TestClient(create_app(settings)) as client:
        paired = client.post(
            "/api/v1/devices/pair",
            json={"code": code, "serial": "emulator-5554", "model": "sdk", "androidVersion": "14"},
        )
    assert paired.status_code == 201, paired.text
    nobody = runner.invoke(phoneflow, ["admin", "pairing-code", "x@example.com", "--database-url", db.url])
    assert nobody.exit_code == 1
    assert "phoneflow admin create-account x@example.com" in nobody.stderr


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


@pytest.mark.parametrize(
    ("database_url", "says"),
    [
        (f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere", "cannot use the database at"),
        ("postgresql://postgres:s3cret@127.0.0.1:notaport/x", "cannot be used"),
        ("nonsense://x", "cannot be used"),
    ],
    ids=["unreachable-postgresql", "bad-port-in-url", "unknown-scheme"],
)
def test_serve_with_an_unusable_database_says_so_in_one_line(
    database_url: str, says: str, tmp_path: Path
) -> None:
    result = _phoneflow(
        "serve", "--port", str(_free_port()), "--database-url", database_url, cwd=tmp_path, env=_env(tmp_path)
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert says in lines[0]
    assert "--database-url" in lines[0]
    assert "s3cret" not in lines[0]


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _phoneflow("serve", "--port", str(port), cwd=tmp_path, env=_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another phoneflow serve?): "
        "stop that process or choose another port with --port"
    ]
    assert "serving on" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "says"),
    [
        (
            "PHONEFLOW_DATA_DIR",
            "error: cannot create the data folder {path}/data (Not a directory): set PHONEFLOW_DATA_DIR",
        ),
        (
            "PHONEFLOW_ARTIFACT_DIR",
            "error: cannot create the artifact folder {path}/data: Not a directory; "
            "set PHONEFLOW_ARTIFACT_DIR",
        ),
        (
            "PROMETHEUS_MULTIPROC_DIR",
            "error: PROMETHEUS_MULTIPROC_DIR names {path}/data, which is not a folder the server may write",
        ),
    ],
)
def test_serve_with_a_folder_it_cannot_make_says_so_in_one_line(
    variable: str, says: str, tmp_path: Path
) -> None:
    """A data folder (its default database), an artifact folder or a metrics folder under a file:
    one line saying what to set."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder", encoding="utf-8")
    env = {**_env(tmp_path / "data"), variable: str(a_file / "data")}
    result = _phoneflow("serve", "--port", str(_free_port()), cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(says.format(path=a_file))
    assert "serving on" not in result.stdout + result.stderr


def test_an_unusable_setting_names_its_variable_in_one_line(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "PHONEFLOW_PAIRING_CODE_TTL_S": "1"}
    for args in (("serve", "--port", str(_free_port())), ("admin", "pairing-code", "a@example.com")):
        result = _phoneflow(*args, cwd=tmp_path, env=env)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "error: the server's settings cannot be used (PHONEFLOW_PAIRING_CODE_TTL_S='1': Input should be "
            "greater than or equal to 10): fix or unset the variable"
        ]


def test_docs_need_no_internet(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}", start_scheduler=False)
    with TestClient(create_app(settings)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "https://" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/static-offline-docs/{asset}" in page.text
            served = client.get(f"/static-offline-docs/{asset}")
            assert served.status_code == 200
            assert len(served.content) > 10_000
