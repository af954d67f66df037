"""The dashboard's router: every page, mounted by `server.app` at `/`."""

from __future__ import annotations

from fastapi import APIRouter

from server.dashboard import (
    auth_pages,
    builder_pages,
    fleet_pages,
    runs_pages,
    settings_pages,
    workflow_pages,
)

router = APIRouter(include_in_schema=False)
# The builder's pages come before the workflow pages: `/workflows/new` is not a workflow id.
for _pages in (auth_pages, runs_pages, fleet_pages, builder_pages, workflow_pages, settings_pages):
    router.include_router(_pages.router)
