"""The builder's Simulate panel in Chromium: simulate an unsaved draft with its inputs, step
through the phone's screens (the element acted on outlined), answer the approval both ways."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.builder_support import require_built_builder
from tests.browser.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser

SHOP = "com.example.shop"
PNG_DATA = re.compile(r"^data:image/png;base64,")

# Sign in, ask for approval, then make an order with the number typed in the inputs form.
DRAFT: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Order after approval",
    "inputs": {
        "type": "object",
        "properties": {"order": {"type": "string", "description": "The order number to type."}},
        "required": ["order"],
    },
    "start": "open",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": SHOP, "stopFirst": True},
            "next": "sign_in",
        },
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "ask"},
        {
            "id": "ask",
            "kind": "control.approval",
            "params": {"message": "Create the order?", "timeoutS": 60},
            "next": {"approved": "new", "rejected": "stop"},
        },
        {"id": "new", "kind": "action.tapByText", "params": {"text": "New order"}, "next": "type"},
        {
            "id": "type",
            "kind": "action.typeText",
            "params": {"text": "{{inputs.order}}", "selector": {"resourceId": f"{SHOP}:id/order"}},
            "next": "save",
        },
        {"id": "save", "kind": "action.tapByText", "params": {"text": "Save"}, "next": "saved"},
        {"id": "saved", "kind": "action.waitForText", "params": {"text": "{{inputs.order}}"}},
        {"id": "stop", "kind": "control.fail", "params": {"message": "the order was not approved"}},
    ],
}


@pytest.fixture(autouse=True)
def _built() -> None:
    require_built_builder()


def _open_draft(
    page: Page, live_server: LiveServer, draft: dict[str, Any] = DRAFT, token: str | None = None
) -> None:
    """A new workflow whose draft (never saved) is `draft`, typed into the JSON tab."""
    if token is None:
        _email, token = live_server.create_account()
    sign_in(page, token, "/workflows/new")
    page.get_by_role("tab", name="JSON").click()
    page.get_by_label("The workflow definition as JSON").fill(json.dumps(draft, indent=2))
    expect(page.locator("#definition-json-status")).to_have_text("In sync with the graph and the forms.")
    page.get_by_role("tab", name="Graph").click()
    page.get_by_role("tab", name="Simulate").click()


def _panel(page: Page) -> Locator:
    return page.locator("#dock-panel-simulate")


def _current(page: Page) -> Locator:
    return _panel(page).locator(".sim-steps button[aria-current=step]")


def test_simulate_a_draft_step_through_its_screens_and_answer_the_approval(
    page: Page, live_server: LiveServer
) -> None:
    _open_draft(page, live_server)
    panel = _panel(page)
    # The inputs form comes from the draft's inputs schema; each approval step has its answers.
    panel.get_by_label("Order", exact=True).fill("A-77")
    approval = panel.locator("[data-approval=ask]")
    expect(approval.get_by_label("Approve")).to_be_checked()
    panel.get_by_role("button", name="Simulate").click()

    status = panel.locator("[data-run-status]")
    expect(status).to_have_attribute("data-run-status", "success")
    steps = panel.locator(".sim-steps button")
    expect(steps).to_have_count(7)
    expect(_current(page)).to_have_attribute("data-node-id", "open")
    before = panel.locator("[data-screen=before] img")
    after = panel.locator("[data-screen=after] img")
    expect(before).to_be_visible()
    expect(after).to_have_attribute("src", PNG_DATA)

    # Step: the tap on "Sign in" is outlined on the screen before it, where the button is.
    panel.get_by_role("button", name="Next step").click()
    expect(_current(page)).to_have_attribute("data-node-id", "sign_in")
    outline = panel.locator("[data-screen=before] [data-outline]")
    expect(outline).to_be_visible()
    box, picture = outline.bounding_box(), before.bounding_box()
    assert box is not None
    assert picture is not None
    # "Sign in" sits in the upper part of the login screen, across most of its width
    assert picture["y"] < box["y"] < picture["y"] + picture["height"] / 2
    assert box["width"] > picture["width"] * 0.6
    assert after.get_attribute("src") != before.get_attribute("src")
    # The canvas follows: the step shown is the step selected.
    expect(page.locator("form.node-form")).to_have_attribute("aria-label", "Step sign_in")

    # Keyboard: arrows move through the steps from the list; Back goes back.
    _current(page).focus()
    page.keyboard.press("ArrowDown")
    expect(_current(page)).to_have_attribute("data-node-id", "ask")
    expect(_current(page)).to_be_focused()
    page.keyboard.press("End")
    expect(_current(page)).to_have_attribute("data-node-id", "saved")
    panel.get_by_role("button", name="Back one step").click()
    expect(_current(page)).to_have_attribute("data-node-id", "save")
    # Typing the order number changed the screen: another picture after than before.
    steps.nth(4).click()
    expect(panel.locator("[data-step-detail=type]")).to_be_visible()
    assert before.get_attribute("src") != after.get_attribute("src")
    # Play runs to the end.
    panel.get_by_role("button", name="Back one step").click()
    panel.get_by_role("button", name="Play").click()
    expect(panel.get_by_text("Step 7 of 7")).to_be_visible()
    expect(panel.get_by_role("button", name="Play")).to_be_visible()
    screenshot(page, "builder-simulate")

    # Reject with a note: the run takes the rejected path; the failing step is shown with its message.
    approval.get_by_label("Reject").check()
    approval.get_by_label("Note for ask").fill("not today")
    panel.get_by_role("button", name="Simulate").click()
    expect(status).to_have_attribute("data-run-status", "failed")
    expect(status).to_contain_text("the order was not approved")
    expect(_current(page)).to_have_attribute("data-node-id", "ask")
    expect(panel.locator("[data-step-message]")).to_have_text("rejected: not today")
    expect(steps).to_have_count(4)
    expect(steps.nth(3)).to_have_attribute("data-node-id", "stop")

    # Let it time out: the same rejected path, with the timeout's words.
    approval.get_by_label("Let it time out").check()
    panel.get_by_role("button", name="Simulate").click()
    expect(panel.locator("[data-step-message]")).to_have_text("no answer to the approval within 60 s")

    # At phone width the panel stacks: the form, the steps, then both screens, none wider than the page.
    page.set_viewport_size({"width": 390, "height": 844})
    for role in ("before", "after"):
        picture = panel.locator(f"[data-screen={role}] img")
        picture.scroll_into_view_if_needed()
        shown = picture.bounding_box()
        assert shown is not None
        assert shown["x"] >= 0
        assert shown["x"] + shown["width"] <= 390
    screenshot(page, "builder-simulate-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # A change to the draft makes the result stale until simulated again; nothing was saved.
    page.get_by_label("Selected step").select_option("stop")
    page.locator("form.node-form").get_by_label("Message", exact=True).fill("stopped")
    expect(panel.locator(".stale-note")).to_be_visible()
    assert "/workflows/new" in page.url


def test_a_draft_with_problems_is_refused_with_where_they_are(page: Page, live_server: LiveServer) -> None:
    _open_draft(page, live_server)
    page.get_by_role("tab", name="JSON").click()
    broken = json.loads(json.dumps(DRAFT))
    broken["nodes"][1]["next"] = "nowhere"
    page.get_by_label("The workflow definition as JSON").fill(json.dumps(broken))
    page.get_by_role("tab", name="Graph").click()
    panel = _panel(page)
    panel.get_by_label("Order", exact=True).fill("A-1")
    panel.get_by_role("button", name="Simulate").click()
    alert = panel.get_by_role("alert")
    expect(alert).to_contain_text("/nodes/1/next")
    expect(alert).to_contain_text("no node 'nowhere'")


TINY_APP = {
    "schemaVersion": 1,
    "apps": [
        {
            "package": "com.acme.tiny",
            "label": "Tiny",
            "startScreen": "home",
            "screens": [
                {
                    "id": "home",
                    "title": "Tiny",
                    "widgets": [{"id": "go", "class": "Button", "text": "Go", "onClick": [{"goTo": "next"}]}],
                },
                {"id": "next", "title": "Next", "widgets": [{"id": "done", "text": "Done!"}]},
            ],
        }
    ],
}


def test_a_draft_is_simulated_on_one_of_the_accounts_saved_app_models(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    saved = live_server.api("POST", "/app-models", token, json={"name": "Tiny", "model": TINY_APP})
    assert saved.status_code == 201, saved.text
    draft = {
        "schemaVersion": 1,
        "name": "On my app",
        "start": "open",
        "nodes": [
            {"id": "open", "kind": "action.launchApp", "params": {"package": "com.acme.tiny"}, "next": "go"},
            {"id": "go", "kind": "action.tapByText", "params": {"text": "Go"}, "next": "done"},
            {"id": "done", "kind": "action.waitForText", "params": {"text": "Done!"}},
        ],
    }
    _open_draft(page, live_server, draft, token)
    panel = _panel(page)
    source = panel.get_by_label("App model")
    # the sample apps have no com.acme.tiny: the run fails on its first step
    panel.get_by_role("button", name="Simulate").click()
    expect(panel.locator("[data-step-message]")).to_have_text("app not installed: com.acme.tiny")
    expect(source.locator("option", has_text="Tiny")).to_have_count(1)
    source.select_option(label="Tiny (com.acme.tiny, 2 screens)")
    panel.get_by_role("button", name="Simulate").click()
    expect(panel.locator("[data-run-status]")).to_have_attribute("data-run-status", "success")
    panel.locator(".sim-steps button[data-node-id=go]").click()
    expect(panel.locator("[data-screen=before] [data-outline]")).to_be_visible()
    expect(panel.locator("[data-screen=after] img")).to_have_attribute(
        "alt", "The phone's screen after step go"
    )
