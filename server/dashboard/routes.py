"""The dashboard's router: every page, mounted by `server.app` at `/`."""

from __future__ import annotations

from fastapi import APIRouter

from server.dashboard import (
    analytics_pages,
    auth_pages,
    batch_pages,
    builder_pages,
    fleet_pages,
    integrations_pages,
    run_control_pages,
    runs_pages,
    settings_pages,
    workflow_pages,
)

router = APIRouter(include_in_schema=False)
# The builder's pages come before the workflow pages: `/workflows/new` is not a workflow id.
_PAGES = (
    auth_pages,
    runs_pages,
    run_control_pages,
    batch_pages,
    analytics_pages,
    fleet_pages,
    builder_pages,
    workflow_pages,
    integrations_pages,
    settings_pages,
)
for _pages in _PAGES:
    router.include_router(_pages.router)
