"""A bad screen never kills a bridge.

One bridge process (`bridge run`) serves two virtual phones. Phone A shows a label with
characters XML 1.0 forbids (raw, as a real phone sends them), then answers a hierarchy dump that
is not XML, then sends a corrupt screenshot, and is finally unplugged (stopped) in the middle of
a run. Each bad run ends `failed` with a message a person can act on and an artifact of what was
seen; A's worker goes on serving, and phone B's runs go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interpreter.appmodel import AppModel
from interpreter.appmodel.model import sample_apps_path
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

SHOP = "com.example.shop"
NOTICE = "Offer\x01 ends\x1b[0m soon\x0b!"
NOT_XML = "ERROR: could not get idle state."


def _apps_with_notice() -> AppModel:
    data = json.loads(sample_apps_path().read_text(encoding="utf-8"))
    shop = next(app for app in data["apps"] if app["package"] == SHOP)
    login = next(screen for screen in shop["screens"] if screen["id"] == "login")
    login["widgets"].insert(
        0, {"id": "notice", "class": "TextView", "text": NOTICE, "resourceId": f"{SHOP}:id/notice"}
    )
    return AppModel.from_dict(data)


def _chain(name: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    steps = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True}},
        *nodes,
    ]
    for here, there in zip(steps, steps[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": name, "targetPackages": [SHOP], "start": "open", "nodes": steps}


READ = _chain(
    "Read the notice",
    {"id": "read", "kind": "action.readText", "params": {"selector": {"resourceId": f"{SHOP}:id/notice"}}},
    {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
)
SHOT = _chain("Screenshot", {"id": "shot", "kind": "action.screenshot", "params": {}})
SLOW = _chain(
    "Slow",
    *({"id": f"w{i}", "kind": "action.wait", "params": {"ms": 300}} for i in range(8)),
    {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
)


@pytest.fixture(scope="module")
def phones(adb_server: str) -> Iterator[tuple[Any, Any]]:
    bad, good = start_emulator(_apps_with_notice()), start_emulator(None)
    try:
        yield bad, good
    finally:
        bad.stop()
        good.stop()


def _ended(client: httpx.Client, run_id: str) -> dict[str, Any]:
    return poll_run(
        client, run_id, lambda run: run["status"] in ENDED, deadline=time.monotonic() + 90, what="no end"
    )


def _artifacts(client: httpx.Client, run_id: str, wanted: str) -> dict[str, dict[str, Any]]:
    """The run's artifacts by name, once one whose name contains `wanted` has arrived."""
    deadline = time.monotonic() + 30
    while True:
        listed = {a["name"]: a for a in client.get(f"/api/v1/runs/{run_id}/artifacts").json()}
        if any(wanted in name for name in listed):
            return listed
        assert time.monotonic() < deadline, f"no artifact like {wanted!r}: {sorted(listed)}"
        time.sleep(0.2)


def test_bad_screens_and_an_unplugged_phone_end_their_runs_and_the_bridge_serves_on(
    server: ServerProcess, phones: tuple[Any, Any], tmp_path: Path
) -> None:
    bad, good = phones
    state_dir = tmp_path / "bridge"
    device_a = pair_in_state_dir(server, bad.serial, state_dir)
    device_b = pair_in_state_dir(server, good.serial, state_dir)
    client = server.client()
    read, shot, slow = (publish_workflow(client, w) for w in (READ, SHOT, SLOW))
    agent = start_agent(
        server,
        [bad.serial, good.serial],
        state_dir,
        PHONEFLOW_BRIDGE_HEARTBEAT_INTERVAL_S="0.5",
        PHONEFLOW_BRIDGE_BACKOFF_MAX_S="2",
    )
    try:
        # 1. Characters XML forbids on screen: read as the phone shows them, the run succeeds.
        run = _ended(client, trigger(client, read, device_a.id))
        assert run["status"] == "success", run
        assert run["trace"][1]["output"] == {"text": NOTICE}

        # 2. A dump that is not XML: the step fails saying so; the raw text is kept as an artifact.
        bad.call(lambda device: device.faults.set(dump=NOT_XML))
        run_id = trigger(client, read, device_a.id)
        run = _ended(client, run_id)
        bad.call(lambda device: device.faults.clear())
        assert run["status"] == "failed", run
        assert run["trace"][-1]["nodeId"] == "read"
        assert run["errorMessage"].startswith(
            "step 'read' (action.readText): device error: the window hierarchy the phone sent is not XML"
        )
        assert repr(NOT_XML) in run["errorMessage"]
        listed = _artifacts(client, run_id, "hierarchy")
        kept = client.get(f"/api/v1/runs/{run_id}/artifacts/failure-2-read-hierarchy.json").json()
        assert (kept["readable"], kept["hierarchy"]) == (False, NOT_XML), listed

        # 3. A corrupt screenshot breaks the run unexpectedly: failed, with bridge-error.json.
        bad.call(lambda device: device.faults.set(screenshot=b"this is not an image"))
        run_id = trigger(client, shot, device_a.id)
        run = _ended(client, run_id)
        bad.call(lambda device: device.faults.clear())
        assert run["status"] == "failed", run
        assert run["errorMessage"].startswith("the bridge could not go on with this run after 1 step(s):")
        assert "bridge-error.json" in run["errorMessage"]
        assert "the bridge goes on serving" in run["errorMessage"]
        _artifacts(client, run_id, "bridge-error.json")
        error = client.get(f"/api/v1/runs/{run_id}/artifacts/bridge-error.json").json()
        assert error["stepsDone"] == 1
        assert "<hierarchy" in error["screen"]["hierarchy"]  # what the phone showed
        assert error["traceback"]

        # The same worker goes on: A runs again, and so does B.
        assert _ended(client, trigger(client, read, device_a.id))["status"] == "success"
        assert _ended(client, trigger(client, read, device_b.id))["status"] == "failed"  # B has no notice
        # 4. Phone A is unplugged mid-run: that run fails saying the phone went away (adb's tracking).
        run_id = trigger(client, slow, device_a.id)
        poll_run(
            client, run_id, lambda r: len(r["trace"]) >= 2, deadline=time.monotonic() + 30, what="no steps"
        )
        bad.stop()
        run = _ended(client, run_id)
        assert run["status"] == "failed", run
        assert f"phone {bad.serial} was disconnected during this run" in run["errorMessage"], run
        assert "Plug the phone back in" in run["errorMessage"]
        assert "adb devices" in run["errorMessage"]  # what to check

        # The bridge is up, B's runs go on, and A's heartbeat says its worker waits for the phone.
        assert agent.poll() is None
        assert _ended(client, trigger(client, shot, device_b.id))["status"] == "success"
        deadline = time.monotonic() + 30
        while True:
            health = client.get(f"/api/v1/devices/{device_a.id}").json()["bridgeHealth"] or {}
            if health.get("worker") == "waiting for the device":
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert health["workerRestarts"] == 0
        assert bad.serial in health["deviceProblem"]
    finally:
        agent.terminate()
        agent.communicate(timeout=30)
        client.close()
