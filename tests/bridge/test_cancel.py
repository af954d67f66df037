"""Cancelling a run that is moving on a phone: the bridge hears of it and stops after the step in flight."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_bridge.state import BridgeState
from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    poll_run,
    publish_workflow,
    start_server,
    trigger,
)

pytestmark = pytest.mark.emulator

STEPS = 30
STEP_MS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("server"))
    try:
        yield process
    finally:
        process.stop()


def slow_workflow() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.example.shop"}}
    ]
    nodes += [{"id": f"w{i}", "kind": "action.wait", "params": {"ms": STEP_MS}} for i in range(STEPS)]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {
        "schemaVersion": 1,
        "name": "Slow",
        "targetPackages": ["com.example.shop"],
        "start": "open",
        "nodes": nodes,
    }


def test_cancel_reaches_the_phone_and_the_run_ends_cancelled(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = server.device(serial)
    BridgeState(state_dir / "state.db").save_pairing(serial, device.id, device.token, server.url)
    client = server.client()
    run_id = trigger(client, publish_workflow(client, slow_workflow()), device.id)
    env = {**os.environ, "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": "0.2"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "device_bridge", "run", "--server", server.url, "--serial", serial,
         "--state-dir", str(state_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        run = poll_run(
            client,
            run_id,
            lambda run: run["status"] == "running" and len(run["trace"]) >= 3,
            deadline=deadline,
            what="the run did not start moving",
        )
        asked = client.post(f"/api/v1/runs/{run_id}/cancel").json()
        assert asked["cancelRequested"] is True
        run = poll_run(
            client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="the run did not end"
        )
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert run["status"] == "cancelled", (run, err)
    # it stopped after the step in flight, long before the workflow's end
    assert 3 <= len(run["trace"]) < STEPS, run["trace"]
    assert all(event["outcome"] == "ok" for event in run["trace"])
