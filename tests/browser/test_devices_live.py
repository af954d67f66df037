"""The Devices page follows the fleet live (issue 14): a phone's health from its bridge's heartbeat,
its queue, and a phone unplugged then plugged back — without a reload, over the dashboard's
event stream (`device.updated`, `run.updated`)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser

PHONE: dict[str, Any] = {
    "adbState": "device",
    "battery": 64,
    "charging": True,
    "screenOn": True,
    "foregroundApp": "com.example.shop",
    "runInHand": None,
}


def _beat(live_server: LiveServer, token: str, **phone: Any) -> None:
    worker = "serving" if phone.get("adbState", "device") == "device" else "waiting for the device"
    body = {"bridge": {"worker": worker}, "phone": {**PHONE, **phone}}
    answer = live_server.api("POST", "/devices/me/heartbeat", token, json=body)
    assert answer.status_code == 200, answer.text


def test_the_devices_page_follows_health_queue_and_unplugging_live(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    sign_in(page, token, "/devices")
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )
    row = page.locator(f"table.devices tr[data-device-id='{device.id}']")
    expect(row.locator(".phone-health")).to_contain_text("—")
    expect(page.locator("#live-dot.on")).to_have_count(1)  # the event stream is open

    # The bridge's heartbeat tells the phone's health: the row shows it without a reload.
    _beat(live_server, device.token)
    health = row.locator(".phone-health")
    expect(health).to_contain_text("adb: device")
    expect(health.locator(".battery")).to_have_text("battery 64% · charging")
    expect(health).to_contain_text("screen on")
    expect(health).to_contain_text("com.example.shop")
    expect(row).to_contain_text("online")

    # Its queue: a run queued for it shows at once, with the link to its runs.
    queued = live_server.api("POST", f"/workflows/{workflow.id}/runs", token, json={"deviceId": device.id})
    assert queued.status_code == 201, queued.text
    expect(row.locator(".queued-count")).to_have_text("1 queued")
    expect(row.locator("a", has_text="its runs")).to_have_attribute("href", f"/runs?deviceId={device.id}")

    # Someone types a new tag: a live update waits until they leave the field (their text stays).
    tags = row.locator("input[name=tags]")
    tags.fill("front-desk")
    _beat(live_server, device.token, battery=63, charging=False, screenOn=False)
    page.wait_for_timeout(1500)
    expect(tags).to_have_value("front-desk")
    expect(health.locator(".battery")).to_have_text("battery 64% · charging")
    page.locator("h1").click()  # leaves the field: the row catches up
    expect(health.locator(".battery")).to_have_text("battery 63% · on battery")
    expect(health).to_contain_text("screen off")

    # Unplugged: the bridge still beats, adb no longer lists the phone.
    _beat(
        live_server,
        device.token,
        adbState="gone",
        battery=None,
        charging=None,
        screenOn=None,
        foregroundApp=None,
    )
    expect(health).to_contain_text("adb: unplugged")
    expect(row.locator(".badge")).to_have_text("offline")
    expect(row.locator(".battery")).to_have_count(0)
    screenshot(page, "devices-live-unplugged")

    # Plugged back.
    _beat(live_server, device.token)
    expect(health).to_contain_text("adb: device")
    expect(row.locator(".badge")).to_have_text("online")
    assert navigations == [], navigations
