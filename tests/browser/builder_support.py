"""Helpers for the builder's browser tests (no tests here): driving the palette and the forms."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from server.dashboard.builder_assets import BuilderNotBuilt, builder_assets


def require_built_builder() -> None:
    """Fail at once, saying what to do, when the builder's files were not built."""
    try:
        builder_assets()
    except BuilderNotBuilt as exc:
        raise AssertionError(f"{exc} (`make test` builds it before the tests)") from None


def node(page: Page, node_id: str) -> Locator:
    """The canvas box of a step."""
    return page.locator(f".react-flow [data-node-id='{node_id}']")


def add_step(page: Page, kind: str, after: str | None = None) -> None:
    """Select `after` (or nothing: the workflow) with the step picker, then add `kind` from the palette."""
    page.get_by_label("Selected step").select_option(after or "")
    page.locator(f".palette-item[data-kind='{kind}']").click()


def step_form(page: Page) -> Locator:
    return page.locator("form.node-form")


def field(page: Page, label: str) -> Locator:
    """A field of the selected step's form by its label (exact)."""
    return step_form(page).get_by_label(label, exact=True)


def wait_checked(page: Page) -> None:
    """Wait until the validator has answered for the current draft."""
    expect(page.locator(".check-state")).not_to_have_text("checking…")


def select_step(page: Page, node_id: str) -> None:
    """Select a step by clicking its box on the canvas."""
    node(page, node_id).click()
    expect(step_form(page)).to_have_attribute("aria-label", f"Step {node_id}")


# The workflow the tests build with the palette and the forms: six steps, a branch and an approval.
SIX_STEPS = ["launch_app", "if", "sign_in", "approval", "tap_by_text", "fail"]


def build_six_step_workflow(page: Page, name: str) -> None:
    """On an empty draft: launch the shop; if "Sign in" shows, sign in; ask for approval; then
    tap "New order" (approved) or fail (rejected). Only the palette and the forms are used."""
    page.get_by_label("Name", exact=True).fill(name)
    add_step(page, "action.launchApp")
    field(page, "Package").fill("com.example.shop")
    field(page, "Stop the app first").check()
    add_step(page, "control.if", after="launch_app")
    expect(field(page, "Condition")).to_have_value("textVisible")
    field(page, "Text visible").fill("Sign in")
    add_step(page, "action.tapByText", after="if")
    field(page, "Text").fill("Sign in")
    field(page, "Id").fill("sign_in")
    field(page, "Id").press("Enter")
    expect(node(page, "sign_in")).to_be_visible()
    add_step(page, "control.approval", after="sign_in")
    field(page, "Message").fill("Create an order?")
    field(page, "Timeout (s)").fill("60")
    add_step(page, "action.tapByText", after="approval")
    field(page, "Text").fill("New order")
    add_step(page, "control.fail")
    field(page, "Message").fill("The order was not approved")
    select_step(page, "approval")
    field(page, "On rejected").select_option("fail")
    select_step(page, "if")
    field(page, "On false").select_option("approval")
    wait_checked(page)
    expect(page.locator(".check-state")).to_have_text("valid")
    for step in SIX_STEPS:
        expect(node(page, step)).to_be_visible()


SIX_STEP_DEFINITION = {
    "schemaVersion": 1,
    "timeoutS": 300,
    "start": "launch_app",
    "nodes": [
        {
            "id": "launch_app",
            "kind": "action.launchApp",
            "params": {"package": "com.example.shop", "stopFirst": True},
            "next": "if",
        },
        {
            "id": "if",
            "kind": "control.if",
            "params": {"textVisible": "Sign in"},
            "next": {"true": "sign_in", "false": "approval"},
        },
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "approval"},
        {
            "id": "approval",
            "kind": "control.approval",
            "params": {"message": "Create an order?", "timeoutS": 60},
            "next": {"approved": "tap_by_text", "rejected": "fail"},
        },
        {"id": "tap_by_text", "kind": "action.tapByText", "params": {"text": "New order"}},
        {"id": "fail", "kind": "control.fail", "params": {"message": "The order was not approved"}},
    ],
}
