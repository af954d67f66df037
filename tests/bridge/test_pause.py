"""Pausing a run that moves on a phone (the emulator): the step in flight finishes, no step starts
while the run is paused, held time is not counted toward `timeoutS`, and a paused run can be cancelled."""

from __future__ import annotations

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

STEPS = 12
STEP_MS = 250
HOLD_S = 6.0  # longer than the run's whole timeoutS minus its steps: a held second must not count
TIMEOUT_S = 8


def waits() -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": f"w{i}", "kind": "action.wait", "params": {"ms": STEP_MS}} for i in range(1, STEPS + 1)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": "Waits", "timeoutS": TIMEOUT_S, "start": "w1", "nodes": nodes}


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_no_step_starts_while_paused_and_held_time_is_not_running_time(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = pair_in_state_dir(server, serial, state_dir)
    client = server.client()
    workflow_id = publish_workflow(client, waits())
    agent = start_agent(server, serial, state_dir)
    try:
        run_id = trigger(client, workflow_id, device.id)
        deadline = time.monotonic() + 60
        poll_run(
            client,
            run_id,
            lambda run: run["status"] == "running" and len(run["trace"]) >= 2,
            deadline=deadline,
            what="the run did not start moving",
        )
        answer = client.post(f"/api/v1/runs/{run_id}/pause")
        paused_at = datetime.now(UTC)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "paused"
        time.sleep(HOLD_S)  # the hold under test: the phone must start nothing meanwhile
        held = client.get(f"/api/v1/runs/{run_id}").json()
        resumed = client.post(f"/api/v1/runs/{run_id}/resume")
        resumed_at = datetime.now(UTC)
        assert resumed.json()["status"] == "running", resumed.text
        run = poll_run(
            client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="the run did not end"
        )

        # a second run, paused and then cancelled: it ends cancelled without another step
        second = trigger(client, workflow_id, device.id)
        poll_run(
            client,
            second,
            lambda run: run["status"] == "running" and len(run["trace"]) >= 1,
            deadline=deadline,
            what="the second run did not start moving",
        )
        client.post(f"/api/v1/runs/{second}/pause")
        second_paused_at = datetime.now(UTC)
        poll_run(
            client,
            second,
            lambda run: run["status"] == "paused" and len(run["trace"]) >= 1,
            deadline=deadline,
            what="the second run was not paused",
        )
        assert client.post(f"/api/v1/runs/{second}/cancel").json()["cancelRequested"] is True
        cancelled = poll_run(
            client, second, lambda run: run["status"] in ENDED, deadline=deadline, what="not cancelled"
        )
        logs = [client.get(f"/api/v1/runs/{ran}/log").json() for ran in (run_id, second)]
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()

    assert held["status"] == "paused", held
    assert run["status"] == "success", (run, err)
    assert len(run["trace"]) == STEPS
    during = [e for e in run["trace"] if paused_at < _moment(e["startedAt"]) < resumed_at]
    assert during == [], during  # no step started while the run was paused
    # the step in flight finished: what the phone had reported by the resume is all it ran before it
    assert [e["seq"] for e in run["trace"] if _moment(e["startedAt"]) < paused_at] == [
        e["seq"] for e in held["trace"]
    ]
    assert cancelled["status"] == "cancelled", (cancelled, err)
    assert all(_moment(e["startedAt"]) < second_paused_at for e in cancelled["trace"]), cancelled["trace"]

    # The engine on the phone logged what it saw, and the bridge's final report brought it to the server.
    log, second_log = logs
    assert log["source"] == "engine", log
    (pause,) = [e for e in log["entries"] if e["kind"] == "pause-seen"]
    assert pause["count"] >= 2  # asked again and again while held: one entry
    assert pause["lastAtMs"] - pause["atMs"] >= (HOLD_S - 2) * 1000
    (resumed,) = [e for e in log["entries"] if e["kind"] == "resumed"]
    assert resumed["values"]["heldMs"] >= (HOLD_S - 2) * 1000
    assert resumed["step"] == pause["step"]
    assert [e["step"] for e in log["entries"] if e["kind"] == "step"] == list(range(1, STEPS + 1))
    assert log["entries"][-1]["text"] == "the run ended success"
    assert second_log["source"] == "engine"
    # (a pause may or may not have been seen before the cancel: the phone asks between steps)
    kinds = [e["kind"] for e in second_log["entries"]]
    assert kinds[-2:] == ["cancel-seen", "end"], kinds
    assert "step" not in kinds[kinds.index("cancel-seen") :]
