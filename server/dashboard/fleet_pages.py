"""The Devices page: list, pair a phone, rename, tag, revoke."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.runs_pages import latest_event_id
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep
from server.devices import service
from server.errors import AppError
from server.runs.models import Run
from server.runs.waiting import IN_HAND
from server.settings import Settings

router = dashboard_router()

TAG = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")


def _workload(db: Session, account_id: str) -> dict[str, dict[str, Any]]:
    """Per device of the account: the run in hand (`run`, `status`) and how many runs are queued."""
    load: dict[str, dict[str, Any]] = {}
    in_hand = db.execute(
        select(Run.device_id, Run.id, Run.status).where(
            Run.account_id == account_id, Run.status.in_(IN_HAND), Run.device_id.is_not(None)
        )
    )
    for device_id, run_id, status in in_hand:
        load.setdefault(str(device_id), {"queued": 0}).update(run=run_id, status=status)
    queued = db.execute(
        select(Run.device_id, func.count())
        .where(Run.account_id == account_id, Run.status == "queued", Run.device_id.is_not(None))
        .group_by(Run.device_id)
    )
    for device_id, count in queued:
        load.setdefault(str(device_id), {"queued": 0})["queued"] = int(count)
    return load


def _devices_page(
    request: Request, db: SessionDep, user: DashboardUser, status_code: int = 200, **extra: object
) -> Response:
    settings: Settings = request.app.state.settings
    # The configured public address when one was set (behind a proxy the request's own may be
    # internal); otherwise the address this browser reached the server by.
    explicit = "public_url" in settings.model_fields_set
    server_url = settings.public_url.rstrip("/") if explicit else str(request.base_url).rstrip("/")
    return page(
        request,
        "devices.html",
        user,
        status_code,
        server_url=server_url,
        events_after=latest_event_id(db, user.account.id),
        **_table_context(db, user),
        **extra,
    )


def _table_context(db: Session, user: DashboardUser) -> dict[str, Any]:
    return {"devices": service.list_devices(db, user.account), "workload": _workload(db, user.account.id)}


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, db: SessionDep, user: User) -> Response:
    """The account's phones: model, Android version, last seen, online, rename and revoke."""
    return _devices_page(request, db, user)


@router.get("/devices/_table", response_class=HTMLResponse)
def devices_table_fragment(request: Request, db: SessionDep, user: User) -> Response:
    """The devices table alone, which live.js swaps in after a `device.updated` or `run.updated` event."""
    return page(request, "_devices_table.html", user, **_table_context(db, user))


@router.post("/devices/pairing-code", response_class=HTMLResponse)
def new_pairing_code(request: Request, db: SessionDep, user: CheckedUser) -> Response:
    """A fresh pairing code and the command that redeems it (shown once)."""
    code, expires_at = service.create_pairing_code(db, user.account, request.app.state.settings)
    # Shown on this response only: the code is stored hashed and cannot be shown again.
    return _devices_page(request, db, user, pairing={"code": code, "expires_at": expires_at})


@router.post("/devices/{device_id}/rename")
def rename(
    request: Request, device_id: str, db: SessionDep, user: CheckedUser, name: Annotated[str, Form()] = ""
) -> Response:
    """Rename one of the account's phones."""
    name = name.strip()
    if not name or len(name) > 200:
        return _devices_page(
            request, db, user, 422, flash="a device name needs 1 to 200 characters", flash_kind="error"
        )
    try:
        service.rename_device(db, user.account, device_id, name)
    except AppError as exc:
        return _devices_page(request, db, user, exc.status_code, flash=exc.message, flash_kind="error")
    return RedirectResponse("/devices", status_code=303)


@router.post("/devices/{device_id}/tags")
def set_tags(
    request: Request, device_id: str, db: SessionDep, user: CheckedUser, tags: Annotated[str, Form()] = ""
) -> Response:
    """Replace a phone's tags, given comma- or space-separated."""
    given = [tag.strip().lower() for tag in tags.replace(",", " ").split() if tag.strip()]
    bad = [tag for tag in given if not TAG.fullmatch(tag)]
    if bad or len(given) > 20:
        flash = (
            f"{bad[0]!r} is not a tag: use letters, digits, '.', '_', ':' and '-' (64 at most)"
            if bad
            else "a phone carries at most 20 tags"
        )
        return _devices_page(request, db, user, 422, flash=flash, flash_kind="error")
    try:
        service.set_tags(db, user.account, device_id, given)
    except AppError as exc:
        return _devices_page(request, db, user, exc.status_code, flash=exc.message, flash_kind="error")
    return RedirectResponse("/devices", status_code=303)


@router.post("/devices/{device_id}/revoke")
def revoke(request: Request, device_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Revoke one of the account's phones: its token stops working at once."""
    try:
        service.revoke_device(db, user.account, device_id)
    except AppError as exc:
        return _devices_page(request, db, user, exc.status_code, flash=exc.message, flash_kind="error")
    return RedirectResponse("/devices", status_code=303)
