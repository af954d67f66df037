"""The Analytics page and the Runs list in a real browser: periods, charts with axes and a legend,
the tables; searching, filtering and sorting the runs, a cancelled run in words, the CSV export of
what the page shows, and the waiting-approvals count going live."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, run_report, screenshot, sign_in

pytestmark = pytest.mark.browser


def _failed_step_report(run_id: str, workflow: Any, started: datetime) -> dict[str, Any]:
    """A run whose third step ("check") failed."""
    return run_report(
        run_id, workflow, status="failed", steps=3, started=started, failed_message="no 'Saved'"
    )


def test_the_analytics_page_over_two_periods(page: Page, live_server: LiveServer) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    now = datetime.now(UTC)
    plan = [(0, "success"), (0, "success"), (1, "failed"), (2, "success"), (9, "success"), (9, "failed")]
    for days_ago, status in plan:
        started = now - timedelta(days=days_ago, minutes=5)
        run_id = str(uuid.uuid4())
        if status == "failed":
            live_server.report(device, _failed_step_report(run_id, workflow, started))
        else:
            live_server.report(
                device, run_report(run_id, workflow, status="success", steps=3, started=started)
            )

    sign_in(page, token, "/analytics")
    expect(page.locator("nav.periods a[aria-current=page]")).to_have_text("14 days")
    expect(page.locator("#total-runs")).to_have_text("6")
    expect(page.locator("#success-rate")).to_have_text("67%")
    bars = page.locator("#runs-chart g.bar")
    expect(bars).to_have_count(14)  # a slot a day, empty days included
    today = bars.nth(13)
    expect(today).to_have_attribute("data-total", "2")
    expect(today.locator("rect.ok")).to_have_count(1)
    expect(page.locator("#runs-chart .y-label").first).to_have_text("0")  # the axis starts at 0
    expect(page.locator("#runs-chart .x-label").first).to_be_visible()
    expect(page.get_by_label("legend")).to_contain_text("failed or timed out")
    expect(page.locator("#rate-chart circle")).to_have_count(4)  # days with ended runs
    expect(page.locator("#rate-chart .y-label").last).to_have_text("100%")
    expect(page.locator("#duration-chart polyline")).not_to_have_count(0)
    expect(page.locator("#top-workflows tbody tr")).to_have_count(1)
    expect(page.locator("#top-workflows")).to_contain_text("Capture order")
    expect(page.locator("#devices tbody tr")).to_have_count(1)
    expect(page.locator("#failing-steps tbody tr").first).to_contain_text("check")
    expect(page.locator("#failing-steps tbody tr").first).to_contain_text("2")  # the step failed twice
    screenshot(page, "20-analytics-14-days")

    page.locator("nav.periods").get_by_role("link", name="7 days").click()
    expect(page).to_have_url(f"{live_server.base_url}/analytics?days=7")
    expect(page.locator("#total-runs")).to_have_text("4")  # the two 9 days ago fall out
    expect(page.locator("#runs-chart g.bar")).to_have_count(7)
    expect(page.locator("#failing-steps tbody tr").first).to_contain_text("1")
    screenshot(page, "21-analytics-7-days")


def test_the_runs_list_searched_filtered_sorted_and_exported(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    now = datetime.now(UTC)
    early, late, cancelled = (str(uuid.uuid4()) for _ in range(3))
    live_server.report(
        device, run_report(early, workflow, status="success", steps=3, started=now - timedelta(hours=3))
    )
    live_server.report(
        device, run_report(late, workflow, status="success", steps=1, started=now - timedelta(hours=2))
    )
    stopped = run_report(cancelled, workflow, status="running", steps=3, started=now - timedelta(hours=1))
    stopped.update(
        status="cancelled", endedAt=stopped["trace"][-1]["startedAt"], durationMs=9000, nSteps=3, nFailed=0
    )
    live_server.report(device, stopped)
    queued = live_server.api(
        "POST",
        f"/workflows/{workflow.id}/runs",
        token,
        json={"deviceId": device.id, "inputs": {"order": "VIP-9"}},
    ).json()["id"]

    sign_in(page, token, "/runs")
    rows = page.locator("#runs-table tbody tr[data-run-id]")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_have_attribute("data-run-id", queued)  # the newest start first
    row = page.locator(f"#runs-table tr[data-run-id='{cancelled}']")
    expect(row.locator("td.steps")).to_have_text("cancelled after 3 steps")
    expect(page.locator(f"#runs-table tr[data-run-id='{early}'] td.steps")).to_have_text("3/3 ok")
    screenshot(page, "22-runs-list")

    page.locator("#sort-started").click()  # oldest first
    expect(rows.nth(0)).to_have_attribute("data-run-id", early)
    page.locator("#sort-duration").click()  # longest first
    expect(rows.nth(0)).to_have_attribute("data-run-id", cancelled)

    page.goto("/runs")
    page.fill("input[name=q]", "vip")  # the start of an input value
    page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-run-id", queued)
    page.fill("input[name=q]", late[:8])  # the start of a run id
    page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-run-id", late)

    page.goto("/runs")
    page.select_option("select[name=trigger]", "device")
    page.select_option("select[name=status]", "success")
    page.click("#runs-filters button[type=submit]")
    expect(rows).to_have_count(2)
    screenshot(page, "23-runs-filtered")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    target = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(target)
    assert target.suffix == ".csv"
    with target.open(encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["id"] for r in exported] == [late, early]  # what the page shows, in its order
    assert {r["trigger"] for r in exported} == {"device"}

    # A run asks for an approval: the count shows up on the open page, without a reload.
    page.goto("/runs")
    expect(page.locator("#live-dot.on")).to_be_visible()
    expect(page.locator("#pending-approvals")).to_have_count(0)
    waiting = str(uuid.uuid4())
    live_server.report(device, run_report(waiting, workflow, status="running", steps=1, started=now))
    asked = live_server.api(
        "POST",
        "/devices/me/approvals",
        device.token,
        json={"runId": waiting, "nodeId": "ask", "visit": 1, "message": "Refund?", "timeoutS": 0},
    )
    assert asked.status_code in (200, 201), asked.text
    expect(page.locator("#pending-approvals")).to_have_text("1 approval waiting for an answer")
