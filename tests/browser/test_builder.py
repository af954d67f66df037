"""The builder in Chromium: building a workflow from the palette and the forms, problems as
you edit, the JSON tab, undo/redo, saving and publishing, old versions and their diff."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.builder_support import add_step, field, node, require_built_builder, wait_checked
from tests.browser.conftest import LiveServer, screenshot, sign_in

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
    screenshot(page, "builder-debug")
    field(page, "Package").fill("com.example.shop")
    wait_checked(page)
    expect(box.locator(".pf-step-badge")).to_have_count(0)
    expect(page.locator(".check-state")).to_have_text("valid")
    screenshot(page, "builder-first-step")
