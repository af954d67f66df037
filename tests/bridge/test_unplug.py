"""Phones that come and go under a running bridge (adb's device tracking): a phone unplugged in the
middle of a run (its emulator stopped: adb sees the transport close and drops it) ends that run
`failed` with a message naming the phone and what to do, while another phone's run goes on; the
heartbeat says the phone is away; plugged back (the emulator started again on its port, announced
to adb), the same bridge serves it again, without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from tests.bridge.conftest import start_emulator
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

SLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Open the shop slowly",
    "targetPackages": ["com.example.shop"],
    "start": "open",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": "com.example.shop"},
            "next": "pause",
        },
        # Reads the screen until it gives up: the phone is unplugged in the middle of this step.
        {
            "id": "pause",
            "kind": "action.waitForText",
            "params": {"text": "Never shown", "timeoutMs": 4000},
            "next": "again",
        },
        {"id": "again", "kind": "action.launchApp", "params": {"package": "com.example.shop"}},
    ],
}
# What the other phone runs meanwhile, and the phone plugged back afterwards.
QUICK: dict[str, Any] = {
    **SLOW,
    "name": "Open the shop",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": "com.example.shop"},
            "next": "pause",
        },
        {"id": "pause", "kind": "action.wait", "params": {"ms": 1500}},
    ],
}


@pytest.fixture
def two_emulators(adb_server: str) -> Iterator[list[Any]]:
    emulators: list[Any] = []
    try:
        for _ in range(2):
            emulators.append(start_emulator(None))
        yield emulators
    finally:
        for emu in emulators:
            emu.stop()


def _phone(client: Any, device_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/devices/{device_id}").json().get("phoneHealth") or {})


def _wait_for(what: str, check: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_phone_unplugged_mid_run_fails_that_run_and_is_served_again_when_back(
    server: ServerProcess, two_emulators: list[Any], tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    lost, kept = two_emulators
    lost_device = pair_in_state_dir(server, lost.serial, state_dir)
    kept_device = pair_in_state_dir(server, kept.serial, state_dir)
    client = server.client()
    workflow_id = publish_workflow(client, SLOW)
    quick_id = publish_workflow(client, QUICK)
    agent = start_agent(
        server, [lost.serial, kept.serial], state_dir, PHONEFLOW_BRIDGE_HEARTBEAT_INTERVAL_S="1"
    )
    try:
        _wait_for(
            "the heartbeat carries the phone's health",
            lambda: (
                _phone(client, lost_device.id).get("adbState") == "device"
                and _phone(client, lost_device.id).get("battery") == 100
            ),
        )
        health = _phone(client, lost_device.id)
        assert health["charging"] is True
        assert health["screenOn"] is True
        assert health["foregroundApp"]

        lost_run = trigger(client, workflow_id, lost_device.id)
        kept_run = trigger(client, quick_id, kept_device.id)
        deadline = time.monotonic() + 60
        poll_run(
            client, lost_run, lambda run: len(run.get("trace") or []) >= 1, deadline=deadline,
            what="the first step of the run on the phone to unplug",
        )  # fmt: skip
        lost.stop()  # unplugged: the emulator's adb transport closes

        failed = poll_run(
            client, lost_run, lambda run: run["status"] in ENDED, deadline=deadline,
            what="the run on the unplugged phone to end",
        )  # fmt: skip
        assert failed["status"] == "failed", failed
        message = failed["errorMessage"]
        assert f"phone {lost.serial} was disconnected during this run" in message, message
        assert "adb no longer lists it" in message
        assert "after 2 step(s)" in message  # pulled in the middle of the second step (it failed)
        assert "(what the step in flight met: step 'pause'" in message
        assert "Plug the phone back in" in message
        assert "`adb devices`" in message
        assert [event["nodeId"] for event in failed["trace"]][:1] == ["open"]
        assert "again" not in [event["nodeId"] for event in failed["trace"]]

        done = poll_run(
            client, kept_run, lambda run: run["status"] in ENDED, deadline=deadline,
            what="the run on the other phone to end",
        )  # fmt: skip
        assert done["status"] == "success", done

        _wait_for(
            "the heartbeat says the phone is gone",
            lambda: _phone(client, lost_device.id).get("adbState") == "gone",
        )
        shown = client.get(f"/api/v1/devices/{lost_device.id}").json()
        assert shown["online"] is False
        assert "plug it back in" in shown["bridgeHealth"]["deviceProblem"]

        # Plugged back: the same serial on the same port; the running bridge serves it again.
        back = Emulator(None, console_port=lost.console_port)
        two_emulators.append(back)
        back.start()
        back.wait_ready(timeout=15)
        again = trigger(client, quick_id, lost_device.id)
        served = poll_run(
            client, again, lambda run: run["status"] in ENDED, deadline=time.monotonic() + 90,
            what="a run on the phone plugged back",
        )  # fmt: skip
        assert served["status"] == "success", served
        _wait_for(
            "the heartbeat says the phone is back",
            lambda: _phone(client, lost_device.id).get("adbState") == "device",
        )
        assert client.get(f"/api/v1/devices/{lost_device.id}").json()["online"] is True
    finally:
        client.close()
        agent.terminate()
        _out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err[-3000:]
