"""A run's video in the browser: a bridge runs a workflow on the virtual phone, which records it with its
own screenrecord (the server makes one from the frames when it cannot), and the run page plays it (and
offers it as a download)."""

from __future__ import annotations

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
SIGN_IN: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Sign in, on video",
    "targetPackages": [SHOP],
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
         "next": "user"},
        {"id": "user", "kind": "action.typeText",
         "params": {"text": "alice", "selector": {"resourceId": f"{SHOP}:id/user"}}, "next": "sign_in"},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}},
    ],
}  # fmt: skip


@pytest.fixture
def page(browser: Browser, server_process: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(
        base_url=server_process.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def test_the_run_page_plays_the_runs_video(
    page: Page, server_process: ServerProcess, phone: Any, tmp_path: Path
) -> None:
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server_process, phone.serial, state_dir)
    with server_process.client() as client:
        workflow_id = publish_workflow(client, SIGN_IN)
        run_id = trigger(client, workflow_id, device.id)
    agent = start_agent(server_process, phone.serial, state_dir)
    try:
        sign_in(page, server_process.account.token, f"/runs/{run_id}")
        # The run ends, its video arrives (or the server makes it from the frames): the page shows the player.
        video = page.locator("#run-video")
        expect(video).to_be_visible(timeout=60_000)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)

    with server_process.client() as client:
        listed = client.get(f"/api/v1/runs/{run_id}/artifacts").json()
    assert {"name": "video.mp4", "contentType": "video/mp4"}.items() <= next(
        a for a in listed if a["name"] == "video.mp4"
    ).items()

    page.reload()
    video = page.locator("#run-video")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    # It plays to its end (the run is quick: its video may last less than a third of a second).
    page.wait_for_function(
        "() => { const v = document.querySelector('#run-video');"
        " return v.readyState >= 2 && !v.error && v.ended && v.currentTime > 0.1; }",
        timeout=20_000,
    )
    state = video.evaluate(
        "v => ({duration: v.duration, width: v.videoWidth, height: v.videoHeight, error: v.error})"
    )
    assert state["error"] is None
    assert state["duration"] > 0.1  # the phone's recording lasts as long as the run
    assert state["width"] > 0
    assert state["height"] > state["width"]  # a phone's portrait screen
    screenshot(page, "run-video")

    with page.expect_download() as download_info:
        page.locator("#video-download").click()
    download = download_info.value
    assert download.suggested_filename == "video.mp4"
    saved = tmp_path / "run.mp4"
    download.save_as(saved)
    assert saved.read_bytes()[4:8] == b"ftyp"
