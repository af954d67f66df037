"""The builder's Workflow form has the workflow's screens-per-step setting (`frames`)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.browser.builder_support import require_built_builder
from tests.browser.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser


def test_the_screens_per_step_setting_is_edited_in_the_workflow_form(
    page: Page, live_server: LiveServer
) -> None:
    require_built_builder()
    _email, token = live_server.create_account()
    sign_in(page, token, "/workflows/new")
    form = page.get_by_role("form", name="Workflow settings")
    setting = form.get_by_label("Screens per step", exact=True)
    expect(setting).to_be_visible()
    setting.select_option("failures")
    page.get_by_role("tab", name="JSON").click()
    draft = json.loads(page.get_by_label("The workflow definition as JSON").input_value())
    assert draft["frames"] == "failures"
