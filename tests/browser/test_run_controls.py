"""The run page's controls in a real browser: Re-run, Pause and Resume."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, run_report, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_rerun_queues_the_same_run_again_and_links_both_ways(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    run_id = str(uuid.uuid4())
    live_server.report(device, run_report(run_id, workflow, status="failed", steps=2, failed_message="no"))

    sign_in(page, token, f"/runs/{run_id}")
    expect(page.locator(".banner .badge")).to_have_text("failed")
    page.click("form[action$='/retry'] button")
    page.wait_for_url(lambda url: run_id not in url)
    expect(page.locator(".banner .badge")).to_have_text("queued")
    expect(page.locator(".banner")).to_contain_text("trigger retry")
    expect(page.locator("a.retry-of")).to_have_attribute("href", f"/runs/{run_id}")
    new_id = page.url.rsplit("/", 1)[1]
    assert live_server.api("GET", f"/runs/{new_id}", token).json()["inputs"] == {"order": "A-17"}
    expect(page.locator(".banner .waiting")).to_contain_text("Why it waits:")
    # a queued run offers Cancel, not Re-run
    expect(page.locator("form[action$='/retry']")).to_have_count(0)
    screenshot(page, "run-rerun-queued")

    page.click("a.retry-of")
    expect(page.locator("a.retried-by")).to_have_attribute("href", f"/runs/{new_id}")


def test_pause_and_resume_from_the_run_page(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    run_id = str(uuid.uuid4())
    live_server.report(device, run_report(run_id, workflow, status="running", steps=1))

    sign_in(page, token, f"/runs/{run_id}")
    expect(page.locator(".banner .badge")).to_have_text("running")
    page.click("form[action$='/pause'] button")
    expect(page.locator(".banner .badge")).to_have_text("paused")
    expect(page.locator(".banner")).to_contain_text("starts no further step until the run is resumed")
    expect(page.locator("form[action$='/pause']")).to_have_count(0)
    expect(page.locator("form[action$='/cancel'] button")).to_be_visible()  # cancel works while paused
    gate = live_server.api("POST", f"/devices/me/runs/{run_id}/gate", device.token).json()
    assert gate["paused"] is True
    screenshot(page, "run-paused")

    page.click("form[action$='/resume'] button")
    expect(page.locator(".banner .badge")).to_have_text("running")
    expect(page.locator("form[action$='/pause'] button")).to_be_visible()
    assert live_server.api("POST", f"/devices/me/runs/{run_id}/gate", device.token).json()["paused"] is False
