"""The Settings page: run retention and artifact storage used, the account's denylist, API tokens, and
the JSON export."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.accounts import service as accounts
from server.accounts.models import Account
from server.artifact_store.service import bytes_used, human_bytes, quota_bytes
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import error_text, page
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep, utcnow
from server.denylist import service as denylist
from server.errors import AppError
from server.runs.export import EXPORT_SORT, ExportFormat, export_response
from server.runs.lease import account_lease_until, commit_then_wait_out
from server.runs.listing import RunFilters
from server.settings import Settings

router = dashboard_router()


def artifact_usage(db: SessionDep, settings: Settings, account: Account) -> dict[str, object]:
    """The account's artifact bytes against its quota, in words and as a percentage."""
    used, quota = bytes_used(db, account.id), quota_bytes(settings, account)
    return {
        "used": human_bytes(used),
        "quota": human_bytes(quota),
        "percent": min(100, round(100 * used / quota)) if quota else 100,
        "full": used >= quota,
    }


def _settings_page(
    request: Request, db: SessionDep, user: DashboardUser, status_code: int = 200, **extra: object
) -> Response:
    settings: Settings = request.app.state.settings
    return page(
        request,
        "settings.html",
        user,
        status_code,
        denylist=denylist.list_entries(db, user.account.id),
        global_entries=list(settings.global_denylist.entries),
        tokens=accounts.list_tokens(db, user.account),
        artifact_usage=artifact_usage(db, settings, user.account),
        **extra,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, db: SessionDep, user: User) -> Response:
    """Retention, denylist, API tokens and the export."""
    return _settings_page(request, db, user)


@router.post("/settings/retention", response_class=HTMLResponse)
def set_retention(
    request: Request, db: SessionDep, user: CheckedUser, days: Annotated[str, Form()] = ""
) -> Response:
    """Change how long runs are kept, within the plan's cap."""
    try:
        value = int(days)
        if value < 1:
            raise ValueError
    except ValueError:
        return _settings_page(
            request, db, user, 422, retention_error=f"'{days}' is not a number of days: enter 1 or more"
        )
    try:
        accounts.set_run_retention_days(user.account, value)
    except AppError as exc:
        return _settings_page(request, db, user, exc.status_code, retention_error=error_text(exc))
    return _settings_page(request, db, user, flash=f"Runs are now kept for {value} days.")


@router.post("/settings/denylist", response_class=HTMLResponse)
def add_denylist_entry(
    request: Request, db: SessionDep, user: CheckedUser, pattern: Annotated[str, Form()] = ""
) -> Response:
    """Add a package name or glob to the account's denylist."""
    try:
        denylist.add_entry(db, user.account, pattern)
    except AppError as exc:
        return _settings_page(request, db, user, exc.status_code, denylist_error=error_text(exc))
    lease_s = request.app.state.settings.run_lease_s
    commit_then_wait_out(db, lambda s: account_lease_until(s, user.account.id, lease_s))
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/denylist/{entry_id}/remove")
def remove_denylist_entry(request: Request, entry_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Remove an entry from the account's denylist."""
    try:
        denylist.remove_entry(db, user.account, entry_id)
    except AppError as exc:
        return _settings_page(request, db, user, exc.status_code, denylist_error=error_text(exc))
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, db: SessionDep, user: CheckedUser, name: Annotated[str, Form()] = ""
) -> Response:
    """A new API token, shown once on the page that answers."""
    name = name.strip()
    if not name or len(name) > 200:
        return _settings_page(
            request, db, user, 422, flash="a token name needs 1 to 200 characters", flash_kind="error"
        )
    _row, token = accounts.create_token(db, user.account, name)
    return _settings_page(request, db, user, new_token=token)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Revoke an API token (the sessions opened with it end too)."""
    try:
        accounts.revoke_token(db, user.account, token_id)
    except AppError as exc:
        return _settings_page(request, db, user, exc.status_code, flash=exc.message, flash_kind="error")
    return RedirectResponse("/settings", status_code=303)


@router.get("/settings/export")
def export(request: Request, user: User, days: int | None = None) -> Response:
    """The same export as `GET /api/v1/runs/export`, authenticated by the dashboard session."""
    window = user.account.export_window_days
    days = window if days is None else days
    if not 1 <= days <= window:
        return page(
            request,
            "message.html",
            user,
            422,
            title="Export window",
            detail=f"the {user.account.plan} plan exports at most {window} days of runs: "
            f"choose 1 to {window}",
            back="/settings",
        )
    since = utcnow() - timedelta(days=days)
    return export_response(
        request, user.account.id, RunFilters(since=since), EXPORT_SORT, ExportFormat.JSON, None
    )
