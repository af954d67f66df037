"""The phone obeys the server's denylist: an account entry added while a run moves applies to the
run's following steps (the step gate shows a new version, the bridge fetches the list), and the
bridge's local file only adds to the server's list."""

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

SHOP = "com.example.shop"
SETTINGS = "com.android.settings"


def _workflow(name: str, package: str, *then: dict[str, Any]) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": package, "stopFirst": True}},
        *then,
    ]
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]
    return {"schemaVersion": 1, "name": name, "start": "open", "nodes": nodes}


def test_an_account_entry_added_mid_run_stops_the_next_ui_step_and_the_local_file_only_adds(
    server: ServerProcess, sample_emulator: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    serial = sample_emulator.serial
    device = pair_in_state_dir(server, serial, state_dir)
    local = tmp_path / "local-denylist.txt"
    local.write_text(f"# this bridge's own additions\n{SETTINGS}\n", encoding="utf-8")
    client = server.client()
    shop = publish_workflow(
        client,
        _workflow(
            "Shop, then a pause",
            SHOP,
            {"id": "pause", "kind": "action.wait", "params": {"ms": 2500}},
            {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
        ),
    )
    settings_app = publish_workflow(client, _workflow("Settings", SETTINGS))
    agent = start_agent(server, serial, state_dir, PHONEFLOW_BRIDGE_DENYLIST_FILE=str(local))
    entry_id = None
    try:
        deadline = time.monotonic() + 40
        run_id = trigger(client, shop, device.id)
        poll_run(client, run_id, lambda run: len(run["trace"]) >= 1, deadline=deadline, what="no first step")
        added = client.post("/api/v1/denylist", json={"pattern": "com.example.*"})
        assert added.status_code == 201, added.text
        entry_id = added.json()["id"]
        run = poll_run(client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="no end")
        assert run["status"] == "failed", run
        assert [(e["nodeId"], e["outcome"]) for e in run["trace"]] == [
            ("open", "ok"),
            ("pause", "ok"),
            ("sign_in", "failed"),
        ]
        assert run["errorMessage"] == (
            f"step 'sign_in' (action.tapByText): denied: {SHOP} is on the package denylist "
            "(entry 'com.example.*'); it came to the front after step 'open' (action.launchApp)"
        )

        # The server's list is in force with a local file; the local file's entry counts too.
        assert client.delete(f"/api/v1/denylist/{entry_id}").status_code == 204
        entry_id = None
        local_run = trigger(client, settings_app, device.id)
        run = poll_run(
            client, local_run, lambda run: run["status"] in ENDED, deadline=deadline, what="no end"
        )
        assert run["status"] == "failed", run
        assert f"denied: {SETTINGS} is on the package denylist" in run["errorMessage"]
    finally:
        if entry_id is not None:
            client.delete(f"/api/v1/denylist/{entry_id}")
        agent.terminate()
        agent.communicate(timeout=30)
        client.close()
