"""The dashboard in a real browser (issue 6): sign in, live runs, the timeline, pairing,
retention above the cap, the JSON export. Each page is screenshot for review."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from server.accounts.models import Account, Plan
from server.dashboard.models import DashboardSession
from tests.browser.conftest import LiveServer, phone_screenshot, run_report, screenshot, sign_in

pytestmark = pytest.mark.browser


def _track_navigations(page: Page) -> list[str]:
    """Every main-frame navigation from now on: a live update must add none."""
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None)
    return seen


def test_sign_in_then_a_reported_run_goes_live_from_running_to_success(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)

    page.goto("/runs")
    expect(page).to_have_url(f"{live_server.base_url}/signin?next=%2Fruns")
    page.fill("input[name=token]", "pf_acc_not-a-real-token")
    page.click("form[action='/signin'] button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("unknown token")
    screenshot(page, "01-signin-error")
    page.fill("input[name=token]", token)
    page.click("form[action='/signin'] button[type=submit]")
    expect(page).to_have_url(f"{live_server.base_url}/runs")
    expect(page.locator("#runs-table tr.empty")).to_contain_text("No runs yet")
    expect(page.locator("#live-dot.on")).to_be_visible()  # the event stream is open

    page.evaluate("window.__noReload = 'still here'")
    navigations = _track_navigations(page)
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC) - timedelta(seconds=5)
    live_server.report(device, run_report(run_id, workflow, status="running", steps=1, started=started))
    row = page.locator(f"#runs-table tr[data-run-id='{run_id}']")
    expect(row).to_have_attribute("data-status", "running")
    expect(row.locator(".badge")).to_have_text("running")
    screenshot(page, "02-runs-running")

    live_server.report(device, run_report(run_id, workflow, status="success", steps=3, started=started))
    expect(row).to_have_attribute("data-status", "success")
    expect(row.locator(".badge")).to_have_text("success")
    expect(row).to_contain_text("3/3")
    expect(page.locator("#runs-stats")).to_contain_text("100%")  # the overview is live too
    assert page.evaluate("window.__noReload") == "still here"
    assert navigations == []

    failed_id = str(uuid.uuid4())
    live_server.report(
        device,
        run_report(
            failed_id,
            workflow,
            status="failed",
            steps=3,
            started=started + timedelta(seconds=2),
            failed_message="no element with text 'Saved' on screen",
        ),
    )
    expect(page.locator(f"#runs-table tr[data-run-id='{failed_id}']")).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.locator("#runs-stats")).to_contain_text("50%")
    assert navigations == []
    screenshot(page, "03-runs")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone's width
    screenshot(page, "03b-runs-narrow")
    page.set_viewport_size({"width": 1280, "height": 860})

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.base_url}/runs/{run_id}")
    steps = page.locator("ol.timeline li.step")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("action.launchApp")
    expect(steps.nth(2)).to_contain_text("action.waitForText")
    expect(steps.nth(2)).to_contain_text("Order A-17")  # the step's output
    expect(page.locator(".banner")).to_contain_text("success")
    screenshot(page, "04-run-detail")

    # The bridge uploads the failed step's screen and window hierarchy after the report.
    live_server.upload_artifact(
        device, failed_id, "failure-3-check.png", "image/png", phone_screenshot("Order A-17 (not saved)")
    )
    hierarchy = b'<?xml version="1.0"?><hierarchy rotation="0"><node text="Order A-17"/></hierarchy>'
    live_server.upload_artifact(
        device, failed_id, "failure-3-check-hierarchy.xml", "application/xml", hierarchy
    )
    page.goto(f"/runs/{failed_id}")
    expect(page.locator(".banner")).to_contain_text("no element with text 'Saved' on screen")
    failed_step = page.locator("ol.timeline li.step.o-failed")
    expect(failed_step).to_contain_text("2 attempts")
    # The screenshot, with the hierarchy drawn over it when the builder's overlay is built.
    shot = failed_step.get_by_role("img", name="the screen when step 3 failed")
    expect(shot).to_be_visible()
    assert shot.evaluate("img => img.naturalWidth") == 270  # the image loaded
    expect(failed_step.get_by_role("link", name="Window hierarchy")).to_have_attribute(
        "href", f"/runs/{failed_id}/artifacts/failure-3-check-hierarchy.xml"
    )
    screenshot(page, "05-run-detail-failed")


def test_run_detail_follows_a_running_run_live(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    live_server.report(device, run_report(run_id, workflow, status="running", steps=1, started=started))

    sign_in(page, token, f"/runs/{run_id}")
    expect(page.locator("ol.timeline li.step")).to_have_count(1)
    page.evaluate("window.__noReload = 1")
    live_server.report(device, run_report(run_id, workflow, status="running", steps=2, started=started))
    expect(page.locator("ol.timeline li.step")).to_have_count(2)
    live_server.report(device, run_report(run_id, workflow, status="success", steps=3, started=started))
    expect(page.locator(".banner .badge")).to_have_text("success")
    expect(page.locator("ol.timeline li.step")).to_have_count(3)
    assert page.evaluate("window.__noReload") == 1


def test_a_busy_fleet_refreshes_the_table_at_once_and_the_stats_at_most_every_5_s(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    sign_in(page, token)
    expect(page.locator("#live-dot.on")).to_be_visible()
    fetched: list[tuple[float, str]] = []
    page.on("request", lambda request: fetched.append((time.monotonic(), request.url)))
    started = datetime.now(UTC)
    run_ids = [str(uuid.uuid4()) for _ in range(8)]
    for run_id in run_ids:  # a couple of seconds of a fleet reporting runs
        live_server.report(device, run_report(run_id, workflow, status="success", steps=3, started=started))
        page.wait_for_timeout(250)
    expect(page.locator(f"#runs-table tr[data-run-id='{run_ids[-1]}']")).to_be_visible()
    # The last events are not lost: the stats catch up (today's bar counts all 8 runs) ...
    expect(page.locator("#runs-stats svg")).to_contain_text(": 8 runs", timeout=15_000)
    tables = [at for at, url in fetched if "/runs/_table" in url]
    stats = [at for at, url in fetched if "/runs/_stats" in url]
    assert len(tables) >= 2, fetched  # the table follows the events
    # ... but the stats were fetched no more than once per 5 s, not once per event.
    assert 2 <= len(stats) < len(run_ids), fetched
    assert all(later - earlier >= 4.8 for earlier, later in itertools.pairwise(stats)), stats


def test_pair_a_phone_from_the_devices_page(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    sign_in(page, token, "/devices")
    expect(page.locator("table.devices tr.empty")).to_contain_text("No phone is paired yet")

    page.get_by_role("button", name="Pair a phone").click()
    code = page.locator("#pairing-code .code").inner_text().strip()
    assert len(code) == 8
    expect(page.locator("#pairing-code pre")).to_contain_text(
        f"phoneflow bridge pair --server {live_server.base_url} --code {code}"
    )
    screenshot(page, "06-devices-pairing-code")

    device = live_server.pair_with_code(code, serial="R58M123ABC")
    page.goto("/devices")
    row = page.locator(f"table.devices tr[data-device-id='{device.id}']")
    expect(row).to_contain_text("R58M123ABC")
    expect(row).to_contain_text("Pixel 7")
    screenshot(page, "07-devices")

    row.locator("input[name=name]").fill("Front desk phone")
    row.get_by_role("button", name="Rename").click()
    expect(row.locator("input[name=name]")).to_have_value("Front desk phone")

    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Revoke").click()
    expect(row.locator(".badge")).to_have_text("revoked")
    assert dialogs == ["Revoke Front desk phone? Its token stops working at once."]
    assert live_server.api("POST", "/devices/me/claim", device.token).status_code == 401

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.base_url}/signin")
    page.goto("/devices")
    expect(page).to_have_url(f"{live_server.base_url}/signin?next=%2Fdevices")


def test_retention_above_the_cap_is_refused_and_the_export_downloads(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    _email, token = live_server.create_account(Plan.FREE)
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    started = datetime.now(UTC) - timedelta(minutes=3)
    run_ids = [str(uuid.uuid4()) for _ in range(2)]
    for index, run_id in enumerate(run_ids):
        live_server.report(
            device,
            run_report(
                run_id, workflow, status="success", steps=3, started=started + timedelta(seconds=index)
            ),
        )

    sign_in(page, token, "/settings")
    page.fill("input[name=days]", "45")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#retention-error")).to_contain_text(
        "45 days is above the free plan's cap of 30 days"
    )
    screenshot(page, "08-settings-retention-error")
    page.fill("input[name=days]", "14")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Runs are now kept for 14 days.")
    expect(page.locator("input[name=days]")).to_have_value("14")
    screenshot(page, "09-settings")

    with page.expect_download() as download_info:
        page.click("#export-link")
    download = download_info.value
    assert download.suggested_filename.startswith("phoneflow-runs-")
    assert download.suggested_filename.endswith(".json")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert [run["id"] for run in exported] == run_ids  # oldest first
    assert all(run["status"] == "success" and len(run["trace"]) == 3 for run in exported)


def test_workflows_pages_and_simulate(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    workflow = live_server.create_workflow(token)
    sign_in(page, token, "/workflows")
    expect(page.locator("table")).to_contain_text("Capture order")
    screenshot(page, "10-workflows")

    page.get_by_role("link", name="Capture order").click()
    expect(page).to_have_url(f"{live_server.base_url}/workflows/{workflow.id}")
    page.fill("textarea[name=inputs]", '{"order": "A-17"}')
    page.get_by_role("button", name="Run on the simulator").click()
    expect(page.locator(".sim ol.timeline li").first).to_contain_text("action.launchApp")
    screenshot(page, "11-workflow-simulated")

    page.fill("textarea[name=definition]", '{"schemaVersion": 1, "name": "x", "nodes": []}')
    page.get_by_role("button", name="Validate and save").click()
    expect(page.locator(".problems")).to_contain_text("the version was not saved")
    screenshot(page, "12-workflow-problems")

    live_server.pair_device(token)
    page.reload()
    page.fill("#run-on-phone input[name=inputs]", '{"order": "A-17"}')
    page.get_by_role("button", name="Queue the run").click()
    expect(page.locator(".banner .badge")).to_have_text("queued")
    expect(page.locator(".banner")).to_contain_text("trigger manual")
    screenshot(page, "12b-run-queued")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator(".banner .badge")).to_have_text("cancelled")

    page.goto("/runs/00000000-0000-0000-0000-000000000000")
    expect(page.locator("h1")).to_have_text("Not found")
    screenshot(page, "13-not-found")


def test_a_page_whose_session_ends_goes_to_signin_on_its_next_update(
    page: Page, live_server: LiveServer
) -> None:
    email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    sign_in(page, token, "/runs")
    expect(page.locator("#live-dot.on")).to_be_visible()
    # Signed out elsewhere (another tab, or the session expired): the row is gone on the server.
    with live_server.session_factory.begin() as session:
        mine = select(Account.id).where(Account.email == email)
        session.execute(delete(DashboardSession).where(DashboardSession.account_id.in_(mine)))
    live_server.report(device, run_report(str(uuid.uuid4()), workflow, status="running", steps=1))
    # The fragment answers 401; the page reloads into the sign-in form instead of showing it in the table.
    expect(page).to_have_url(f"{live_server.base_url}/signin?next=%2Fruns")
    expect(page.locator("#runs-table")).to_have_count(0)
