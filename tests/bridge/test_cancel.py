"""Cancelling a run that is moving on a phone: the bridge hears of it and stops after the step in flight."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
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


QUICK_MS = 40
# Step 29 of the 30 is long: a cancel that comes late (a slow machine) still lands before the last
# step, so every run has a step left to refuse and must end `cancelled`.
BUFFER_MS = 3000
CANCELS = 20


def thirty_steps() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": f"s{i}", "kind": "action.wait", "params": {"ms": BUFFER_MS if i == 29 else QUICK_MS}}
        for i in range(1, 31)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": "Thirty steps", "start": "s1", "nodes": nodes}


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_no_step_starts_after_the_server_accepted_the_cancel(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    """20 cancels at random points of a 30-step run: never a step whose start is after the moment
    the server's answer to the cancel came back (which waits for the run's lease), and every run ends
    `cancelled`."""
    rng = random.Random(20)
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = pair_in_state_dir(server, serial, state_dir)
    client = server.client()
    workflow_id = publish_workflow(client, thirty_steps())
    agent = start_agent(server, serial, state_dir, PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S="0.05")
    outcomes = []
    try:
        for attempt in range(CANCELS):
            run_id = trigger(client, workflow_id, device.id)
            deadline = time.monotonic() + 30
            poll_run(
                client, run_id, lambda run: run["status"] != "queued", deadline=deadline, what="not claimed"
            )
            time.sleep(rng.uniform(0, 28 * QUICK_MS / 1000))
            answer = client.post(f"/api/v1/runs/{run_id}/cancel")
            accepted_at = datetime.now(UTC)
            assert answer.status_code == 200, answer.text
            assert answer.json()["cancelRequested"] is True
            run = poll_run(
                client,
                run_id,
                lambda run: run["status"] in ENDED,
                deadline=deadline,
                what="the run did not end",
            )
            late = [e for e in run["trace"] if _moment(e["startedAt"]) > accepted_at]
            outcomes.append((attempt, run["status"], len(run["trace"]), late))
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert all(status == "cancelled" for _, status, _, _ in outcomes), (outcomes, err)
    assert all(not late for _, _, _, late in outcomes), outcomes  # no step started after the cancel
    assert all(steps < 30 for _, _, steps, _ in outcomes), outcomes
    # The cancels came at different points. Under a lease (1 s, about 20 of these quick steps) the phone
    # hears a cancel when its lease runs out, so the runs stop at a few points, not wherever it came.
    assert len({steps for _, _, steps, _ in outcomes}) > 1, outcomes
