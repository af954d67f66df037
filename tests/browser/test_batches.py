"""A batch in a real browser: tag phones on the Devices page, queue a batch from the workflow page,
and watch its page follow the runs live."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, run_report, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_tag_phones_queue_a_batch_and_follow_it_live(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    phones = [live_server.pair_device(token) for _ in range(3)]
    other = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)

    sign_in(page, token, "/devices")
    for phone in phones:
        row = page.locator(f"tr[data-device-id='{phone.id}']")
        row.locator("input[name=tags]").fill("Store-12 lab")
        row.locator("form.tags-form button").click()
        page.wait_for_url("**/devices")
    first_tags = page.locator(f"tr[data-device-id='{phones[0].id}'] input[name=tags]")
    expect(first_tags).to_have_value("lab store-12")
    assert live_server.api("GET", f"/devices/{other.id}", token).json()["tags"] == []

    page.goto(f"/workflows/{workflow.id}")
    page.fill("form.batch-form input[name=tag]", "store-12")
    page.click("form.batch-form button[type=submit]")
    page.wait_for_url("**/batches/*")
    expect(page.locator(".batch-progress")).to_contain_text("0 of 3 ended")
    expect(page.locator("table.batch-runs tbody tr")).to_have_count(3)
    batch_id = page.url.rsplit("/", 1)[1]
    batch = live_server.api("GET", f"/batches/{batch_id}", token).json()
    assert sorted(run["deviceId"] for run in batch["runs"]) == sorted(phone.id for phone in phones)

    # the phones report: the page follows without a reload
    page.evaluate("window.__noReload = 1")
    by_device = {run["deviceId"]: run for run in batch["runs"]}
    for phone in phones[:2]:
        run = by_device[phone.id]
        assert live_server.api("POST", "/devices/me/claim", phone.token).status_code == 200
        body = run_report(run["id"], workflow, status="success", steps=3)
        body["trigger"] = "manual"
        live_server.report(phone, body)
    expect(page.locator(".batch-done")).to_have_text("2")
    expect(page.locator("table.batch-runs .badge.s-success")).to_have_count(2)
    assert page.evaluate("window.__noReload") == 1
    screenshot(page, "batch-page")

    # the Devices page shows each phone's run in hand and its queue, with a link to its runs
    page.goto("/devices")
    load = page.locator(f"tr[data-device-id='{phones[2].id}'] td.workload")
    expect(load).to_contain_text("idle")
    expect(load.locator(".queued-count")).to_have_text("1 queued")
    assert live_server.api("POST", "/devices/me/claim", phones[2].token).status_code == 200
    page.reload()
    expect(load.locator("a.in-hand")).to_contain_text("running")
    expect(load.locator(".queued-count")).to_have_count(0)
    expect(load.locator(f"a[href='/runs?deviceId={phones[2].id}']")).to_be_visible()
