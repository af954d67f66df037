"""Pair, claim, run, report — end to end: a real server process, the bridge as a process, the emulator.

The bridge (`python -m device_bridge run`) serves the emulator for the server; the test
triggers runs through the server's API and watches them through it only.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_bridge.state import BridgeState
from tests.bridge.server_process import ServerProcess, pair_in_state_dir, poll_run, publish_workflow, trigger

pytestmark = pytest.mark.emulator

SHOP = "com.example.shop"

STEPPING: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Sign in slowly",
    "targetPackages": [SHOP],
    "inputs": {"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]},
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
         "next": "pause1"},
        {"id": "pause1", "kind": "action.wait", "params": {"ms": 600}, "next": "user"},
        {"id": "user", "kind": "action.typeText",
         "params": {"text": "{{inputs.user}}", "selector": {"resourceId": f"{SHOP}:id/user"}},
         "next": "pause2"},
        {"id": "pause2", "kind": "action.wait", "params": {"ms": 600}, "next": "read"},
        {"id": "read", "kind": "action.readText", "params": {"selector": {"resourceId": f"{SHOP}:id/user"},
                                                             "saveAs": "typed"}, "next": "pause3"},
        {"id": "pause3", "kind": "action.wait", "params": {"ms": 600}, "next": "sign_in"},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "orders"},
        {"id": "orders", "kind": "action.waitForText", "params": {"text": "New order", "timeoutMs": 3000},
         "next": "pause4"},
        # The progress so far stays on the server a while before the run ends: the final report goes
        # with the next claim, at once, and a poll every 0.1 s on a loaded machine must see the state.
        {"id": "pause4", "kind": "action.wait", "params": {"ms": 600}},
    ],
}  # fmt: skip

FAILING: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Tap what is not there",
    "targetPackages": [SHOP],
    "start": "open",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": SHOP, "stopFirst": True},
            "next": "archive",
        },
        {"id": "archive", "kind": "action.tapByText", "params": {"text": "Archive", "timeoutMs": 300}},
    ],
}


def bridge(*args: str, state_dir: Path, **popen: Any) -> list[str]:
    return [sys.executable, "-m", "device_bridge", *args, "--state-dir", str(state_dir)]


def wait_for_run(client: httpx.Client, run_id: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Poll the run until it ends; returns every distinct (status, traceLen) state seen, in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        state = {"status": run["status"], "traceLen": len(run["trace"]), "at": time.monotonic(), "run": run}
        if not seen or (seen[-1]["status"], seen[-1]["traceLen"]) != (state["status"], state["traceLen"]):
            seen.append(state)
        if run["status"] in ("success", "failed", "cancelled", "timeout"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end within {timeout_s} s; states seen: {seen}")


def test_pair_claim_run_report(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    client = server.client()
    request.addfinalizer(client.close)

    code = client.post("/api/v1/pairing-codes").json()["code"]
    paired = subprocess.run(
        bridge("pair", "--server", server.url, "--code", code, "--serial", serial, state_dir=state_dir),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert paired.returncode == 0, paired.stderr
    device_id = BridgeState(state_dir / "state.db").device(serial).device_id
    assert f"as device {device_id}" in paired.stdout
    # the follow-up it prints is the command that serves the phone, --state-dir included
    follow_up = paired.stdout.split("serve it with: ", 1)[1].strip()
    assert f"--state-dir {state_dir}" in follow_up
    run_args = shlex.split(follow_up)
    assert run_args[:3] == ["phoneflow", "bridge", "run"]
    assert client.get(f"/api/v1/devices/{device_id}").json()["serial"] == serial
    # a code is single use: pairing again with it is refused with the server's words
    again = subprocess.run(
        bridge("pair", "--server", server.url, "--code", code, "--serial", serial, state_dir=tmp_path / "b2"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2
    assert "already used" in again.stderr
    assert "phoneflow devices pair-code" in again.stderr
    # a server URL without its scheme, or where no server answers, says what to check
    bare = server.url.removeprefix("http://")
    for url, said in ((bare, f"e.g. {server.url}"), ("http://127.0.0.1:9", "is `phoneflow serve` running")):
        refused = subprocess.run(
            bridge("pair", "--server", url, "--code", code, "--serial", serial, state_dir=tmp_path / "b3"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 2
        assert said in refused.stderr

    stepping_id = publish_workflow(client, STEPPING)
    failing_id = publish_workflow(client, FAILING)
    env = {
        **os.environ,
        "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": "0.2",
        "PHONEFLOW_BRIDGE_HEARTBEAT_INTERVAL_S": "1",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "phoneflow", *run_args[1:]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        run_id = trigger(client, stepping_id, device_id, {"user": "alice"})
        states = wait_for_run(client, run_id)
        failed_id = trigger(client, failing_id, device_id)
        failed_states = wait_for_run(client, failed_id)
        artifacts = client.get(f"/api/v1/runs/{failed_id}/artifacts").json()
        deadline = time.monotonic() + 10
        while (
            len([a for a in artifacts if a["name"].startswith("failure-")]) < 2
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
            artifacts = client.get(f"/api/v1/runs/{failed_id}/artifacts").json()
    finally:
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert "stopped after 2 run(s); 0 report(s) left in the outbox" in out

    final = states[-1]["run"]
    assert final["status"] == "success", final
    assert [e["nodeId"] for e in final["trace"]] == [n["id"] for n in STEPPING["nodes"]]
    assert final["trace"][4]["output"] == {"text": "alice"}
    assert final["nSteps"] == 9
    assert final["endedAt"] is not None
    assert final["durationMs"] >= 1800
    assert final["trigger"] == "api"
    # progress: the server saw the run running with a trace that grew step by step
    running = [s for s in states if s["status"] == "running"]
    assert len({s["traceLen"] for s in running}) >= 3, [(s["status"], s["traceLen"]) for s in states]
    gaps = [b["at"] - a["at"] for a, b in zip(running, running[1:], strict=False)]
    assert max(gaps, default=0) < 2.0, gaps  # 1 s promised; slack for a loaded CI machine

    failed = failed_states[-1]["run"]
    assert failed["status"] == "failed"
    assert failed["errorMessage"].startswith("step '")  # the run's message names the step that ended it
    assert "): no element with text 'Archive' on screen; on screen" in failed["errorMessage"]
    # The failure context (frames and the run's video, the phone's or the server's, apart).
    names = sorted(
        a["name"] for a in artifacts if not a["name"].startswith("frame-") and a["name"] != "video.mp4"
    )
    assert names == ["failure-2-archive-hierarchy.xml", "failure-2-archive.png"], artifacts
    png = client.get(f"/api/v1/runs/{failed_id}/artifacts/failure-2-archive.png")
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    xml = client.get(f"/api/v1/runs/{failed_id}/artifacts/failure-2-archive-hierarchy.xml")
    assert "Sign in" in xml.text

    listing = subprocess.run(
        bridge("outbox", state_dir=state_dir), capture_output=True, text=True, timeout=60
    )
    assert "the outbox is empty" in listing.stdout


def test_run_left_in_flight_by_a_killed_bridge_ends_failed(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = pair_in_state_dir(server, serial, state_dir)
    client = server.client()
    request.addfinalizer(client.close)
    nodes: list[dict[str, Any]] = [
        {"id": f"w{i}", "kind": "action.wait", "params": {"ms": 400}} for i in range(20)
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    slow = {**STEPPING, "name": "Slow", "nodes": nodes, "start": "w0", "inputs": {"type": "object"}}
    run_id = trigger(client, publish_workflow(client, slow), device.id)
    env = {**os.environ, "PHONEFLOW_BRIDGE_CLAIM_INTERVAL_S": "0.2"}
    command = bridge("run", "--server", server.url, "--serial", serial, state_dir=state_dir)
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll_run(
            client,
            run_id,
            lambda run: run["status"] == "running" and len(run["trace"]) >= 2,
            deadline=time.monotonic() + 30,
            what="the run never got going",
        )
    finally:
        first.kill()  # SIGKILL: no clean shutdown, the run is left in flight
        first.wait(10)
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        states = wait_for_run(client, run_id, timeout_s=20)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    final = states[-1]["run"]
    assert final["status"] == "failed"
    assert final["errorMessage"].startswith("the bridge stopped while this run was in flight")
    assert len(final["trace"]) >= 2
    assert final["nSteps"] == len(final["trace"])
