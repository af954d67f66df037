"""A failed run's screen on the run page: the window hierarchy the bridge kept is drawn over the
screenshot (the screen inspector's overlay); a picked element shows the selectors that find it."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from interpreter.appmodel import sample_apps
from interpreter.appmodel.phone import PhoneState
from interpreter.appmodel.screen import render_png
from interpreter.hierarchy import Bounds, to_android_xml
from interpreter.matcher import Selector, find
from tests.browser.builder_support import require_built_builder
from tests.browser.conftest import LiveServer, run_report, screenshot, sign_in


def _login_screen() -> tuple[bytes, bytes, Bounds]:
    """The shop's login screen as the bridge keeps it (a PNG, the hierarchy XML) and where Sign in is."""
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    root = phone.hierarchy()
    button = find(root, Selector(resource_id="com.example.shop:id/sign_in"))
    assert button is not None
    return render_png(phone), to_android_xml(root).encode(), button.bounds


def test_a_failed_steps_hierarchy_is_drawn_over_its_screenshot(page: Page, live_server: LiveServer) -> None:
    require_built_builder()
    _email, token = live_server.create_account()
    device = live_server.pair_device(token)
    workflow = live_server.create_workflow(token)
    run_id = str(uuid.uuid4())
    live_server.report(
        device,
        run_report(
            run_id,
            workflow,
            status="failed",
            steps=3,
            failed_message="no element with text 'Saved' on screen",
        ),
    )
    image, hierarchy, button = _login_screen()
    live_server.upload_artifact(device, run_id, "failure-3-check.png", "image/png", image)
    live_server.upload_artifact(device, run_id, "failure-3-check-hierarchy.xml", "application/xml", hierarchy)
    sign_in(page, token, f"/runs/{run_id}")

    failed_step = page.locator("ol.timeline li.step.o-failed")
    overlay = failed_step.get_by_test_id("screen-overlay")
    expect(overlay).to_be_visible()
    expect(failed_step.get_by_role("img", name="the screen when step 3 failed")).to_be_visible()
    expect(failed_step.get_by_role("link", name="Window hierarchy")).to_have_attribute(
        "href", f"/runs/{run_id}/artifacts/failure-3-check-hierarchy.xml"
    )
    # The Sign in button's middle, from phone pixels to the picture's.
    box = overlay.bounding_box()
    assert box is not None
    x, y = button.center
    overlay.click(position={"x": x * box["width"] / 1080, "y": y * box["height"] / 2340})
    details = failed_step.locator(".element-details")
    expect(details.locator("h3")).to_have_text("Sign in")
    first = details.locator(".selector-row").first
    expect(first).to_contain_text("resourceId = com.example.shop:id/sign_in")
    expect(first).to_contain_text("unique")
    expect(details.get_by_role("button", name="Add tap step")).to_have_count(0)  # a run page adds no steps
    screenshot(page, "run-failure-overlay")
