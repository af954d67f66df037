"""Cancelling a run that is moving on a phone: the bridge hears of it and stops after the step in flight."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    pair_in_state_dir,
    poll_run,
    publish_workflow,
    start_agent,
    trigger,
)

pytestmark = pytest.mark.emulator

STEPS = 30
STEP_MS = 300


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
    device = pair_in_state_dir(server, serial, state_dir)
    client = server.client()
    run_id = trigger(client, publish_workflow(client, slow_workflow()), device.id)
    agent = start_agent(server, serial, state_dir)
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
