"""End to end: a workflow built in the builder (palette and forms only), saved and published,
runs on the virtual phone through a paired bridge; its approval is answered on the run page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.bridge.server_process import (
    ENDED,
    ServerProcess,
    pair_in_state_dir,
    poll_run,
    start_agent,
)
from tests.browser.builder_support import build_six_step_workflow, require_built_builder
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.emulator]


@pytest.fixture
def page(browser: Browser, server_process: ServerProcess) -> Iterator[Page]:
    """A fresh browser context on the server process (not the suite's in-thread server)."""
    context = browser.new_context(base_url=server_process.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def test_a_workflow_built_in_the_builder_runs_on_the_phone_and_succeeds(
    page: Page, server_process: ServerProcess, phone: Any, tmp_path: Path
) -> None:
    require_built_builder()
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server_process, phone.serial, state_dir)
    sign_in(page, server_process.account.token, "/workflows/new")
    build_six_step_workflow(page, "Order on the phone")
    page.get_by_role("button", name="Save version").click()
    page.wait_for_url("**/workflows/*/edit")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("save-state")).to_have_text("Version 1 · published")
    workflow_id = page.url.rsplit("/", 2)[-2]

    # Queue a run from the workflow's page, as a person would; the bridge claims it.
    page.goto(f"/workflows/{workflow_id}")
    page.locator("#run-on-phone select[name=device_id]").select_option(device.id)
    page.locator("#run-on-phone").get_by_role("button", name="Queue the run").click()
    page.wait_for_url("**/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    agent = start_agent(
        server_process, phone.serial, state_dir, PHONEFLOW_BRIDGE_APPROVAL_POLL_INTERVAL_S="0.1"
    )
    client = server_process.client()
    try:
        deadline = time.monotonic() + 90
        poll_run(
            client,
            run_id,
            lambda run: run["status"] == "waiting_for_approval",
            deadline=deadline,
            what="the run never asked for approval",
            meanwhile=lambda run: run["status"] in ("queued", "running"),
        )
        # The run page shows the question live; approve it there.
        expect(page.get_by_text("Create an order?")).to_be_visible(timeout=20_000)
        page.get_by_role("button", name="Approve").click()
        run = poll_run(
            client, run_id, lambda run: run["status"] in ENDED, deadline=deadline, what="the run did not end"
        )
        expect(page.locator(".banner.s-success")).to_be_visible(timeout=20_000)
        screenshot(page, "builder-run-on-phone")
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        client.close()
    assert run["status"] == "success", (run, err)
    assert [(e["nodeId"], e["outcome"]) for e in run["trace"]] == [
        ("launch_app", "ok"),
        ("if", "ok"),
        ("sign_in", "ok"),
        ("approval", "ok"),
        ("tap_by_text", "ok"),
    ]
