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
