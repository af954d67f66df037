"""kill -9 the bridge's upload process at random moments during uploads, ≥ 50 times.

The device side (this test) keeps making runs: for each run a `running` report with part
of its trace, later its final report, all queued in the outbox on disk. Meanwhile
`python -m device_bridge upload` processes send the outbox to a real server process in
small batches, and each is killed with SIGKILL at a random moment after it started
sending. At the end one upload runs to completion, and the server must hold exactly the
runs made — none lost, none doubled — each in its final state with its whole trace.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from device_bridge.outbox import Outbox, RowState
from device_bridge.state import BridgeState
from tests.bridge.server_process import ServerProcess, start_server

KILLS = 50
# Each round queues 2 × RUNS_PER_ROUND reports in batches of 3, so an upload is still under way
# when the kill lands even on a loaded machine; the round cap only stops a broken test.
RUNS_PER_ROUND = 12
MAX_ROUNDS = KILLS * 3
SERIAL = "kill-test-device"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_server(tmp_path / "server")
    try:
        yield process
    finally:
        process.stop()


def event(seq: int, start: datetime, failed: bool = False) -> dict[str, Any]:
    return {
        "seq": seq, "nodeId": f"step{seq}", "kind": "action.wait", "outcome": "failed" if failed else "ok",
        "message": "no element with text 'X' on screen" if failed else None,
        "startedAt": (start + timedelta(milliseconds=100 * seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "durationMs": 90, "attempts": 1, "output": {},
    }  # fmt: skip


class DeviceRuns:
    """The runs this 'device' makes, and the reports it queues for them."""

    def __init__(self, outbox: Outbox, device_id: str, workflow_id: str, version_id: str) -> None:
        self.outbox = outbox
        self.device_id = device_id
        self.base = {
            "workflowId": workflow_id,
            "workflowVersionId": version_id,
            "trigger": "device",
            "inputs": {},
        }
        self.started: dict[str, datetime] = {}
        self.finished: dict[str, str] = {}

    def start(self) -> str:
        run_id = str(uuid.uuid4())
        start = datetime.now(UTC)
        self.started[run_id] = start
        report = {**self.base, "id": run_id, "deviceId": self.device_id, "status": "running",
                  "trace": [event(1, start)]}  # fmt: skip
        self.outbox.enqueue(report, self.device_id)
        return run_id

    def finish(self, run_id: str) -> None:
        start = self.started[run_id]
        failed = len(self.finished) % 5 == 4
        status = "failed" if failed else "success"
        trace = [event(1, start), event(2, start), event(3, start, failed)]
        report = {
            **self.base, "id": run_id, "deviceId": self.device_id, "status": status, "trace": trace,
            "startedAt": trace[0]["startedAt"], "endedAt": trace[2]["startedAt"], "durationMs": 300,
            "errorMessage": trace[2]["message"], "nSteps": 3, "nFailed": int(failed), "nRetries": 0,
        }  # fmt: skip
        self.outbox.enqueue(report, self.device_id)
        self.finished[run_id] = status


def upload_process(state_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PHONEFLOW_BRIDGE_UPLOAD_BATCH_SIZE": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "device_bridge", "upload", "--state-dir", str(state_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_kill_nine_during_uploads_loses_and_doubles_nothing(server: ServerProcess, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    state_dir = tmp_path / "bridge"
    device = server.device(SERIAL)
    BridgeState(state_dir / "state.db").save_pairing(SERIAL, device.id, device.token, server.url)
    with server.client() as client:
        created = client.post("/api/v1/workflows", json={"name": "made on the device", "definition": {
            "schemaVersion": 1, "name": "made on the device", "start": "w",
            "nodes": [{"id": "w", "kind": "action.wait", "params": {"ms": 1}}]}})  # fmt: skip
        assert created.status_code == 201, created.text
        workflow_id, version_id = created.json()["id"], created.json()["versionId"]
    outbox = Outbox(state_dir / "outbox.db")
    runs = DeviceRuns(outbox, device.id, workflow_id, version_id)
    for _ in range(250):  # a backlog, so that every kill finds uploads under way
        runs.finish(runs.start())
    open_runs: list[str] = []

    kills_during_upload = 0
    rounds = 0
    while kills_during_upload < KILLS:
        rounds += 1
        assert rounds <= MAX_ROUNDS, (
            f"only {kills_during_upload} kills landed during uploads in {rounds} rounds"
        )
        # the device goes on making runs while uploads come and go
        for run_id in open_runs:
            runs.finish(run_id)
        open_runs = [runs.start() for _ in range(RUNS_PER_ROUND)]
        child = upload_process(state_dir)
        assert child.stdout is not None
        first = child.stdout.readline()  # printed right before the first batch goes out
        assert first.startswith("uploading"), first + child.stderr.read() if child.stderr else first
        time.sleep(rng.uniform(0.0, 0.1))
        pending_at_kill = outbox.count()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
        if child.returncode == -signal.SIGKILL and pending_at_kill > 0:
            kills_during_upload += 1

    for run_id in open_runs:
        runs.finish(run_id)
    last = upload_process(state_dir)
    out, err = last.communicate(timeout=120)
    assert last.returncode == 0, err
    assert outbox.count(RowState.PENDING) == 0
    assert outbox.reports([RowState.REJECTED]) == []

    made = runs.finished
    with server.db.engine.connect() as conn:
        stored: dict[str, str] = dict(
            conn.execute(text("SELECT id, status FROM runs WHERE device_id = :d"), {"d": device.id}).all()
        )
        events: dict[str, int] = dict(
            conn.execute(text("SELECT run_id, count(*) FROM trace_events GROUP BY run_id")).all()
        )
    assert len(stored) == len(made), f"server holds {len(stored)} runs, the device made {len(made)}"
    assert stored == made
    with server.client() as client:
        for run_id in rng.sample(sorted(made), 25):
            run = client.get(f"/api/v1/runs/{run_id}").json()
            assert run["status"] == made[run_id]
            assert [e["seq"] for e in run["trace"]] == [1, 2, 3]
            assert run["nSteps"] == 3
            assert run["endedAt"] is not None
    assert {run_id: events.get(run_id) for run_id in made} == dict.fromkeys(made, 3)
    assert kills_during_upload >= KILLS
