"""A fleet on one bridge: three emulators tagged alike, a batch over the tag (one run per phone) and
runs any free phone with the tag takes — each run on one phone, every run done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bridge.conftest import start_emulator
from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    pair_in_state_dir,
    poll_run,
    publish_workflow,
    start_agent,
)

pytestmark = pytest.mark.emulator

WORKFLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Open the shop",
    "targetPackages": ["com.example.shop"],
    "start": "open",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": "com.example.shop"},
            "next": "pause",
        },
        {"id": "pause", "kind": "action.wait", "params": {"ms": 200}},
    ],
}


@pytest.fixture(scope="module")
def three_emulators(adb_server: str) -> Iterator[list[Any]]:
    emulators: list[Any] = []
    try:
        for _ in range(3):
            emulators.append(start_emulator(None))
        yield emulators
    finally:
        for emu in emulators:
            emu.stop()


def test_a_batch_on_three_phones_and_tag_runs_each_taken_once(
    server: ServerProcess, three_emulators: list[Any], tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    serials = [emu.serial for emu in three_emulators]
    devices = [pair_in_state_dir(server, serial, state_dir) for serial in serials]
    client = server.client()
    for device in devices:
        assert client.put(f"/api/v1/devices/{device.id}/tags", json={"tags": ["lab"]}).status_code == 200
    workflow_id = publish_workflow(client, WORKFLOW)
    agent = start_agent(server, serials, state_dir)
    try:
        batch = client.post(f"/api/v1/workflows/{workflow_id}/batches", json={"tag": "lab"}).json()
        tag_runs = [
            client.post(f"/api/v1/workflows/{workflow_id}/runs", json={"deviceTag": "lab"}).json()["id"]
            for _ in range(3)
        ]
        deadline = time.monotonic() + 90
        while True:
            progress = client.get(f"/api/v1/batches/{batch['id']}").json()
            if progress["done"] == progress["total"]:
                break
            assert time.monotonic() < deadline, progress
            time.sleep(0.2)
        ended = [
            poll_run(client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="not done")
            for run_id in tag_runs
        ]
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert progress["counts"] == {"success": 3}, (progress, err)
    assert sorted(run["deviceId"] for run in progress["runs"]) == sorted(device.id for device in devices)
    assert [run["status"] for run in ended] == ["success"] * 3, (ended, err)
    assert all(run["deviceId"] in {device.id for device in devices} for run in ended)
    assert all(run["deviceTag"] == "lab" for run in ended)


def test_a_phone_paired_while_the_bridge_runs_gets_its_run(
    server: ServerProcess, three_emulators: list[Any], tmp_path: Path
) -> None:
    """`bridge run` without `--serial` serves every paired phone, those paired after it started too."""
    state_dir = tmp_path / "bridge"
    first, later = three_emulators[0].serial, three_emulators[1].serial
    device = pair_in_state_dir(server, first, state_dir)
    client = server.client()
    workflow_id = publish_workflow(client, WORKFLOW)
    agent = subprocess.Popen(
        [sys.executable, "-m", "device_bridge", "run", "--server", server.url, "--state-dir", str(state_dir)],
        env={**os.environ, "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": "0.2"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        run_id = client.post(f"/api/v1/workflows/{workflow_id}/runs", json={"deviceId": device.id}).json()[
            "id"
        ]
        poll_run(client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="first phone")
        paired_later = pair_in_state_dir(server, later, state_dir)  # while the bridge runs
        later_run = client.post(
            f"/api/v1/workflows/{workflow_id}/runs", json={"deviceId": paired_later.id}
        ).json()["id"]
        run = poll_run(
            client,
            later_run,
            lambda run: run["status"] in ENDED,
            deadline=deadline,
            what="the later phone's run",
        )
        seen = client.get(f"/api/v1/devices/{paired_later.id}").json()
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert run["status"] == "success", (run, err)
    assert run["deviceId"] == paired_later.id
    assert seen["bridgeHealth"] is not None  # its heartbeat goes out too
