"""The builder in Chromium: building a workflow from the palette and the forms, problems as
you edit, the JSON tab, undo/redo, saving and publishing, old versions and their diff."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.builder_support import (
    SIX_STEP_DEFINITION,
    add_step,
    build_six_step_workflow,
    field,
    node,
    require_built_builder,
    select_step,
    wait_checked,
)
from tests.browser.conftest import SCREENSHOTS, LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _built() -> None:
    require_built_builder()


def test_a_problem_appears_on_a_new_step_and_goes_away_when_its_field_is_filled(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    sign_in(page, token, "/workflows/new")
    add_step(page, "action.launchApp")
    box = node(page, "launch_app")
    expect(box).to_be_visible()
    # No package yet: the validator's problem is on the node and on the form.
    expect(box.locator(".pf-step-badge.error")).to_be_visible()
    expect(page.locator("form.node-form .field-problems")).to_contain_text("needs param 'package'")
    field(page, "Package").fill("com.example.shop")
    wait_checked(page)
    expect(box.locator(".pf-step-badge")).to_have_count(0)
    expect(page.locator(".check-state")).to_have_text("valid")
    screenshot(page, "builder-first-step")


def _saved_state(page: Page) -> Locator:
    return page.get_by_test_id("save-state")


def test_build_a_six_step_workflow_with_a_branch_and_an_approval_then_save_and_publish(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    sign_in(page, token, "/workflows/new")
    build_six_step_workflow(page, "Order with approval")
    # Edges carry their outcomes' names.
    for label in ("true", "false", "approved", "rejected"):
        expect(page.locator(".react-flow__edge-text", has_text=label)).to_have_count(1)
    screenshot(page, "builder-six-steps")

    # Undo / redo: delete a step, undo brings it back with its edges, redo deletes it again.
    select_step(page, "fail")
    page.get_by_role("button", name="Delete step").click()
    expect(node(page, "fail")).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(node(page, "fail")).to_be_visible()
    expect(page.locator(".react-flow__edge-text", has_text="rejected")).to_have_count(1)
    page.get_by_role("button", name="Redo").click()
    expect(node(page, "fail")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(node(page, "fail")).to_be_visible()

    # The JSON tab: the same draft as text; an edit there shows in the forms; broken JSON is refused.
    page.get_by_role("tab", name="JSON").click()
    text = page.get_by_label("The workflow definition as JSON")
    draft = json.loads(text.input_value())
    assert draft == {**SIX_STEP_DEFINITION, "name": "Order with approval"}
    draft["nodes"][3]["params"]["message"] = "Create the order now?"
    text.fill(json.dumps(draft, indent=2))
    expect(page.locator("#definition-json-status")).to_have_text("In sync with the graph and the forms.")
    text.fill("{ not json")
    expect(page.locator("#definition-json-status")).to_contain_text("not valid JSON")
    page.get_by_role("tab", name="Graph").click()
    select_step(page, "approval")
    expect(field(page, "Message")).to_have_value("Create the order now?")

    # Save (creates the workflow), then publish; the server holds exactly the draft.
    page.get_by_role("button", name="Save version").click()
    expect(_saved_state(page)).to_have_text("Version 1")
    page.wait_for_url("**/workflows/*/edit")
    workflow_id = page.url.rsplit("/", 2)[-2]
    page.get_by_role("button", name="Publish").click()
    expect(_saved_state(page)).to_have_text("Version 1 · published")
    stored = live_server.api("GET", f"/workflows/{workflow_id}", token).json()
    assert stored["publishedVersionId"] == stored["latestVersion"]["id"]
    assert stored["name"] == "Order with approval"
    assert stored["latestVersion"]["definition"] == {**draft, "name": "Order with approval"}

    # A change makes a new version; publishing waits for the save.
    select_step(page, "tap_by_text")
    field(page, "Text").fill("New Order")
    expect(_saved_state(page)).to_have_text("Changed since version 1")
    expect(page.get_by_role("button", name="Publish")).to_be_disabled()
    page.get_by_role("button", name="Save version").click()
    expect(_saved_state(page)).to_have_text("Version 2")


def test_an_old_version_is_read_only_compared_and_a_draft_starts_from_it(
    page: Page, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    first = {**SIX_STEP_DEFINITION, "name": "Versions"}
    created = live_server.api(
        "POST", "/workflows", token, json={"name": "Versions", "definition": first}
    ).json()
    second = json.loads(json.dumps(first))
    second["nodes"][4]["params"]["text"] = "New Order"
    second["nodes"] = [n for n in second["nodes"] if n["id"] != "sign_in"]
    second["nodes"][1]["next"] = {"true": "approval", "false": "approval"}
    second["nodes"].append({"id": "pause", "kind": "action.wait", "params": {"ms": 500}})
    next(n for n in second["nodes"] if n["id"] == "tap_by_text")["next"] = "pause"
    saved = live_server.api(
        "POST", f"/workflows/{created['id']}/versions", token, json={"definition": second}
    )
    assert saved.status_code == 201, saved.text
    v1, v2 = created["versionId"], saved.json()["id"]
    sign_in(page, token, f"/workflows/{created['id']}")

    # Compare v1 with v2 from the workflow page.
    page.locator(".compare-form select[name=from_version]").select_option(v1)
    page.locator(".compare-form select[name=to_version]").select_option(v2)
    page.locator(".compare-form button").click()
    expect(page.locator("h1")).to_have_text("Versions: v1 → v2")
    expect(page.locator("[data-node-change=added]")).to_contain_text("pause")
    expect(page.locator("[data-node-change=removed]")).to_contain_text("sign_in")
    changed = page.locator("[data-node-change=changed]", has_text="tap_by_text")
    expect(changed.locator("[data-field-change=changed]")).to_contain_text("/params/text")
    expect(changed).to_contain_text('"New Order"')
    screenshot(page, "builder-version-diff")

    # v1 read-only: the graph and the forms, nothing to change.
    page.get_by_role("link", name="View v1").click()
    expect(page.get_by_test_id("save-state")).to_have_text("Version 1 (read-only)")
    expect(node(page, "sign_in")).to_be_visible()
    expect(page.locator(".palette")).to_have_count(0)
    expect(page.get_by_role("button", name="Save version")).to_have_count(0)
    select_step(page, "sign_in")
    expect(field(page, "Text")).to_have_value("Sign in")
    expect(field(page, "Text")).to_be_disabled()
    screenshot(page, "builder-version-read-only")

    # A draft from v1, saved: v3 holds v1's definition again.
    page.get_by_role("link", name="Start a draft from this version").click()
    expect(page.get_by_test_id("save-state")).to_have_text("Draft from version 1: saving makes a new version")
    expect(node(page, "sign_in")).to_be_visible()
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_test_id("save-state")).to_have_text("Version 3")
    versions = live_server.api("GET", f"/workflows/{created['id']}/versions", token).json()
    assert [v["number"] for v in versions] == [1, 2, 3]
    assert versions[2]["definition"] == first


def test_at_phone_width_the_builder_fits_and_works_by_keyboard(
    browser: Browser, live_server: LiveServer
) -> None:
    _email, token = live_server.create_account()
    context = browser.new_context(base_url=live_server.base_url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, token, "/workflows/new")
        expect(page.locator(".palette-item").first).to_be_visible()
        # Keyboard only: focus the palette's launchApp, press Enter, type the package.
        page.locator(".palette-item[data-kind='action.launchApp']").focus()
        page.keyboard.press("Enter")
        expect(node(page, "launch_app")).to_be_visible()
        field(page, "Package").focus()
        page.keyboard.type("com.example.shop")
        wait_checked(page)
        expect(page.locator(".check-state")).to_have_text("valid")
        # Nothing wider than the phone; every control of the builder has a label.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('.builder input, .builder select, .builder textarea')]
                .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map((el) => el.outerHTML.slice(0, 80))"""
        )
        assert unlabelled == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "builder-phone-width.png"), full_page=True)
    finally:
        context.close()
