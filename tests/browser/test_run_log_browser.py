"""The run page's execution log in a real browser: the engine's entries with their times, a wait's
looks as one entry with its count, and the variables as they changed. Screenshot for review."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from interpreter.appmodel import sample_apps
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.simulator import SimulatedDevice
from tests.browser.conftest import LiveServer, run_report, screenshot, sign_in

pytestmark = pytest.mark.browser

LOOKS = {
    "schemaVersion": 1,
    "name": "Looks",
    "start": "init",
    "nodes": [
        {"id": "init", "kind": "control.setVar", "params": {"name": "n", "value": 1}, "next": "check"},
        {"id": "check", "kind": "control.if", "params": {"expr": "vars.n < 3"}, "next": {"true": "look"}},
        {
            "id": "look",
            "kind": "action.waitForText",
            "params": {"text": "Never shown", "timeoutMs": 500},
            "optional": True,
            "next": "done",
        },
        {"id": "done", "kind": "control.setVar", "params": {"name": "n", "value": 2}},
    ],
}


def engine_run(run_id: str, started: datetime) -> dict[str, Any]:
    clock = VirtualClock(start=started)
    result = run_workflow(LOOKS, SimulatedDevice(sample_apps(), clock), clock=clock, run_id=run_id)
    data = result.to_json()
    data.pop("inputs", None)
    return data


def test_the_run_page_shows_the_engines_log_and_the_variables(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC) - timedelta(seconds=30)
    run = engine_run(run_id, started)
    assert run["status"] == "success", run["errorMessage"]
    live_server.report(
        device, {**run_report(run_id, workflow, status="success", steps=0, started=started), **run}
    )

    sign_in(page, token, f"/runs/{run_id}")
    log = page.locator("ol.exec-log")
    expect(log.locator("li")).to_have_count(len(run["log"]))
    expect(page.get_by_text("The engine's decisions as it made them")).to_be_visible()
    expect(log.locator("li.log-condition")).to_contain_text("vars.n < 3 was true")
    poll = log.locator("li.log-wait-poll")
    expect(poll).to_have_count(1)
    expect(poll).to_contain_text("text 'Never shown': not on screen yet")
    (looks,) = [entry for entry in run["log"] if entry["kind"] == "wait-poll"]
    assert looks["count"] >= 3  # a 500 ms wait looks several times: one entry
    expect(poll.locator(".log-count")).to_contain_text(
        f"× {looks['count']} until {looks['lastAtMs'] / 1000:.2f} s"
    )
    expect(log.locator("li.log-end")).to_contain_text("the run ended success")
    rows = page.locator("table.log-vars tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("vars.n")
    expect(rows.nth(1)).to_contain_text("2")
    screenshot(page, "run-execution-log")
