"""A real phoneflow server process for the bridge's end-to-end tests.

The server runs under uvicorn in a child process on a SQLite file in tmp_path; the test
process migrates that file first and creates an account (and, when asked, devices) with
the server's own services, then talks to the server over HTTP only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from device_bridge.state import BridgeState
from server.db import make_engine, make_session_factory
from server.migrate import upgrade
from tests.server.factories import AccountFixture, Db, DeviceFixture, create_account, create_device

STARTUP_DEADLINE_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    db: Db
    account: AccountFixture
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self) -> httpx.Client:
        """An HTTP client as the account."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.account.token}"}, timeout=15
        )

    def device(self, serial: str | None = None) -> DeviceFixture:
        """A device of the account, created directly (no pairing code needed)."""
        return create_device(self.db, self.account.id, serial=serial)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.db.engine.dispose()


def start_server(tmp_path: Path, db_url: str | None = None, **env: str) -> ServerProcess:
    """Make an account, start the server on `db_url` (default: a SQLite file in tmp_path, migrated
    here) and wait until it answers."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{tmp_path / 'server.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    db = Db(url=db_url, kind=engine.dialect.name, engine=engine, session_factory=make_session_factory(engine))
    account = create_account(db)
    port = free_port()
    log_path = tmp_path / "server.log"
    child_env = {
        **os.environ,
        "PHONEFLOW_DATABASE_URL": db_url,
        "PHONEFLOW_START_SCHEDULER": "false",
        "PHONEFLOW_LOG_LEVEL": "WARNING",
        "PHONEFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **env,
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", db, account, process, log_path)
    # A cold start imports the whole server: seconds alone, far more on a shared, busy machine.
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/openapi.json", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server did not answer within {STARTUP_DEADLINE_S} s:\n{server.log()}")


def publish_workflow(client: httpx.Client, definition: dict[str, Any]) -> str:
    """Create a workflow through the API, publish its first version; returns the workflow id."""
    created = client.post("/api/v1/workflows", json={"name": definition["name"], "definition": definition})
    assert created.status_code == 201, created.text
    body = created.json()
    published = client.post(f"/api/v1/workflows/{body['id']}/publish", json={"versionId": body["versionId"]})
    assert published.status_code in (200, 201), published.text
    return str(body["id"])


def trigger(
    client: httpx.Client, workflow_id: str, device_id: str, inputs: dict[str, Any] | None = None
) -> str:
    response = client.post(
        f"/api/v1/workflows/{workflow_id}/runs", json={"deviceId": device_id, "inputs": inputs or {}}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


ENDED = ("success", "failed", "cancelled", "timeout")


def poll_run(
    client: httpx.Client,
    run_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    deadline: float,
    what: str,
    meanwhile: Callable[[dict[str, Any]], bool] = lambda _run: True,
) -> dict[str, Any]:
    """The run (with its trace) once `until(run)` holds; fails saying `what` did not happen by
    `deadline` (time.monotonic), or as soon as `meanwhile(run)` does not hold while waiting."""
    run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
    while not until(run):
        assert meanwhile(run), run
        assert time.monotonic() < deadline, f"{what}: {run}"
        time.sleep(0.1)
        run = client.get(f"/api/v1/runs/{run_id}").json()
    return run


def pair_in_state_dir(server: ServerProcess, serial: str, state_dir: Path) -> DeviceFixture:
    """A device of the server's account for `serial`, saved as paired in the bridge's `state_dir`."""
    device = server.device(serial)
    BridgeState(state_dir / "state.db").save_pairing(serial, device.id, device.token, server.url)
    return device


def start_agent(
    server: ServerProcess, serial: str | list[str], state_dir: Path, **env: str
) -> subprocess.Popen[str]:
    """`python -m device_bridge run` serving `serial` (or several) from `state_dir` (claiming every
    0.2 s, more settings in `env`); its stderr is kept for the test's failure message."""
    serials = [serial] if isinstance(serial, str) else serial
    return subprocess.Popen(
        [sys.executable, "-m", "device_bridge", "run", "--server", server.url,
         *(part for one in serials for part in ("--serial", one)), "--state-dir", str(state_dir)],
        env={**os.environ, "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": "0.2", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
