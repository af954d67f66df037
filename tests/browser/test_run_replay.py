"""Watch and replay a run in the browser: a bridge runs a workflow on the virtual phone while its
page shows the screens as they arrive and the step in flight; afterwards the run is replayed step
by step (filmstrip, timeline, arrow keys, the acted-on element outlined)."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.bridge.server_process import (
    ServerProcess,
    pair_in_state_dir,
    publish_workflow,
    start_agent,
    trigger,
)
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.emulator]

SHOP = "com.example.shop"
USER = {"resourceId": f"{SHOP}:id/user"}
# UI steps with waits between them: a wait is long enough to see it in flight and touches no
# screen, so the frames arrive while the run is still going.
SLOW_SIGN_IN: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Sign in, watched",
    "targetPackages": [SHOP],
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
         "next": "look"},
        {"id": "look", "kind": "action.wait", "params": {"ms": 1500}, "next": "user"},
        {"id": "user", "kind": "action.typeText", "params": {"text": "alice", "selector": USER},
         "next": "think"},
        {"id": "think", "kind": "action.wait", "params": {"ms": 1500}, "next": "sign_in"},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "orders"},
        {"id": "orders", "kind": "action.waitForText", "params": {"text": "New order", "timeoutMs": 5000}},
    ],
}  # fmt: skip


@pytest.fixture
def page(browser: Browser, server_process: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=server_process.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def test_a_run_is_watched_live_then_replayed_step_by_step(
    page: Page, server_process: ServerProcess, phone: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server_process, phone.serial, state_dir)
    with server_process.client() as client:
        workflow_id = publish_workflow(client, SLOW_SIGN_IN)
        run_id = trigger(client, workflow_id, device.id)
    sign_in(page, server_process.account.token, f"/runs/{run_id}")
    panel = page.locator("#run-screen")
    expect(panel.locator(".no-frames")).to_be_visible()

    agent = start_agent(server_process, phone.serial, state_dir)
    try:
        # Live: the step in flight (a wait), then the first screen, while the run is still going.
        in_flight = page.locator("#step-in-flight")
        expect(in_flight).to_be_visible()
        expect(in_flight.locator(".if-node")).to_have_text("look")
        expect(in_flight.locator(".if-elapsed")).to_contain_text(" s")
        films = panel.locator("button.film")
        expect(films.first).to_be_visible()
        assert panel.get_attribute("data-status") == "running"
        expect(page.locator("#shot-after")).to_have_attribute(
            "src", f"/runs/{run_id}/artifacts/frame-00001.jpg"
        )
        expect(in_flight.locator(".if-node")).to_have_text("think")
        expect(page.locator("#run-elapsed")).not_to_have_text("—")
        screenshot(page, "run-live")
        # The run ends: every screen arrived, nothing is in flight.
        expect(panel).to_have_attribute("data-status", "success", timeout=60_000)
        expect(films).to_have_count(4)  # after open, user, sign_in, orders (waits touch no screen)
        expect(in_flight).to_be_hidden()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)

    # Replay: the page opens on the first screen; the arrow keys walk the steps.
    page.reload()
    current = panel.locator("button.film.current")
    expect(current).to_have_attribute("data-seq", "1")
    page.keyboard.press("ArrowRight")
    expect(current).to_have_attribute("data-seq", "3")
    expect(page.locator("#cap-after")).to_have_text("After step 3 user")
    expect(page.locator("#shot-before")).to_have_attribute("src", f"/runs/{run_id}/artifacts/frame-00001.jpg")
    outline = panel.locator(".acted")
    expect(outline).to_be_visible()  # the user field, where the text went
    page.keyboard.press("ArrowRight")
    expect(current).to_have_attribute("data-seq", "5")
    box = outline.bounding_box()
    shot = page.locator("#shot-before").bounding_box()
    assert box is not None
    assert shot is not None
    assert shot["x"] <= box["x"]
    assert box["x"] + box["width"] <= shot["x"] + shot["width"] + 1
    expect(page.locator(".timeline li.step.current")).to_have_attribute("data-seq", "5")
    page.keyboard.press("ArrowLeft")
    expect(current).to_have_attribute("data-seq", "3")
    # Choosing a step in the timeline shows its screens; a wait shows the screen it left as it was.
    page.locator(".timeline li.step[data-seq='4']").click()
    expect(current).to_have_attribute("data-seq", "3")
    page.locator(".timeline li.step[data-seq='6']").click()
    expect(current).to_have_attribute("data-seq", "6")
    expect(page.locator("#shot-after")).to_have_attribute("src", f"/runs/{run_id}/artifacts/frame-00006.jpg")
    screenshot(page, "run-replay")


def test_live_on_streams_the_screen_between_steps(
    page: Page, server_process: ServerProcess, phone: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server_process, phone.serial, state_dir)
    with server_process.client() as client:
        workflow_id = publish_workflow(client, {**SLOW_SIGN_IN, "name": "Sign in, watched live"})
        run_id = trigger(client, workflow_id, device.id)
    sign_in(page, server_process.account.token, f"/runs/{run_id}")
    toggle = page.locator("#live-toggle")
    expect(toggle).to_have_text("Live: off")
    toggle.click()
    expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "true")
    agent = start_agent(server_process, phone.serial, state_dir)
    try:
        # During the waits the phone sends its screen a few times a second: the page shows it.
        expect(page.locator("#cap-after")).to_have_text("Live")
        expect(page.locator("#shot-after")).to_have_attribute("src", re.compile(r"/artifacts/live\.jpg\?at="))
        expect(page.locator("#run-screen")).to_have_attribute("data-status", "success", timeout=60_000)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    # The live frames are not part of the replay: the filmstrip has the steps' screens only.
    page.reload()
    expect(page.locator("#run-screen button.film")).to_have_count(4)
