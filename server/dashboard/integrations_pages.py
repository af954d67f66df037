"""The Integrations pages: outgoing webhook endpoints with their delivery log, and incoming hooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import error_text, page
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep
from server.devices.service import list_devices
from server.errors import AppError, NotFound
from server.hooks import service as hooks
from server.settings import Settings
from server.webhooks import service as webhooks
from server.webhooks.models import WebhookDelivery
from server.workflows.models import Workflow

router = dashboard_router()
DELIVERIES_SHOWN = 50


def _integrations_page(
    request: Request, db: SessionDep, user: DashboardUser, status_code: int = 200, **extra: Any
) -> Response:
    settings: Settings = request.app.state.settings
    endpoints = webhooks.list_endpoints(db, user.account.id)
    last = {}
    for endpoint in endpoints:
        newest = db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.created_at.desc())
            .limit(1)
        ).first()
        last[endpoint.id] = newest
    workflows = list(
        db.scalars(select(Workflow).where(Workflow.account_id == user.account.id).order_by(Workflow.name))
    )
    return page(
        request,
        "integrations.html",
        user,
        status_code,
        endpoints=endpoints,
        last_delivery=last,
        events=webhooks.SUBSCRIBABLE,
        hooks=hooks.list_hooks(db, user.account.id),
        workflows=workflows,
        workflow_names={w.id: w.name for w in workflows},
        devices=[d for d in list_devices(db, user.account) if d.revoked_at is None],
        device_names={d.id: d.name for d in list_devices(db, user.account)},
        default_rate=settings.hook_rate_per_minute,
        **extra,
    )


@router.get("/integrations", response_class=HTMLResponse)
def integrations_page(request: Request, db: SessionDep, user: User) -> Response:
    """Webhook endpoints (what they hear of, their last delivery) and incoming hooks."""
    return _integrations_page(request, db, user)


@router.post("/integrations/webhooks", response_class=HTMLResponse)
def add_endpoint(
    request: Request,
    db: SessionDep,
    user: CheckedUser,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Register an endpoint; its page shows the signing secret."""
    try:
        settings: Settings = request.app.state.settings
        endpoint = webhooks.create_endpoint(
            db,
            user.account.id,
            url=url,
            events=events or [],
            description=description,
            allow_private=settings.webhook_allow_private_targets,
        )
    except AppError as exc:
        return _integrations_page(
            request, db, user, exc.status_code, webhook_error=error_text(exc), form_url=url
        )
    return RedirectResponse(f"/integrations/webhooks/{endpoint.id}?created=1", status_code=303)


def _endpoint_page(
    request: Request,
    db: SessionDep,
    user: DashboardUser,
    endpoint_id: str,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    endpoint = webhooks.get_endpoint(db, user.account.id, endpoint_id)
    deliveries = webhooks.list_deliveries(db, user.account.id, endpoint.id, limit=DELIVERIES_SHOWN)
    return page(
        request,
        "webhook.html",
        user,
        status_code,
        endpoint=endpoint,
        deliveries=[(d, webhooks.attempts_of(db, d.id)) for d in deliveries],
        events=webhooks.SUBSCRIBABLE,
        **extra,
    )


@router.get("/integrations/webhooks/{endpoint_id}", response_class=HTMLResponse)
def endpoint_page(
    request: Request, endpoint_id: str, db: SessionDep, user: User, created: str | None = None
) -> Response:
    """One endpoint: its secret, events, the test button and the delivery log with every attempt."""
    flash = "Endpoint added. Verify each request's signature with the secret below." if created else None
    return _endpoint_page(request, db, user, endpoint_id, flash=flash)


@router.post("/integrations/webhooks/{endpoint_id}/test")
def test_endpoint(request: Request, endpoint_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Queue a webhook.test event; the log shows its answer within a second or two."""
    webhooks.send_test(db, user.account.id, endpoint_id)
    return RedirectResponse(f"/integrations/webhooks/{endpoint_id}", status_code=303)


@router.post("/integrations/webhooks/{endpoint_id}/toggle")
def toggle_endpoint(request: Request, endpoint_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Pause (deliveries wait) or resume an endpoint."""
    endpoint = webhooks.get_endpoint(db, user.account.id, endpoint_id)
    webhooks.update_endpoint(db, user.account.id, endpoint.id, enabled=not endpoint.enabled)
    return RedirectResponse(f"/integrations/webhooks/{endpoint_id}", status_code=303)


@router.post("/integrations/webhooks/{endpoint_id}/delete")
def delete_endpoint(request: Request, endpoint_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Delete an endpoint and its log."""
    webhooks.delete_endpoint(db, user.account.id, endpoint_id)
    return RedirectResponse("/integrations", status_code=303)


@router.post("/integrations/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(
    request: Request, endpoint_id: str, delivery_id: str, db: SessionDep, user: CheckedUser
) -> Response:
    """Send a delivery again (the same webhook-id and body)."""
    if webhooks.get_delivery(db, user.account.id, delivery_id).endpoint_id != endpoint_id.lower():
        raise NotFound(f"webhook endpoint {endpoint_id} has no delivery {delivery_id}")
    webhooks.redeliver(db, user.account.id, delivery_id)
    return RedirectResponse(f"/integrations/webhooks/{endpoint_id}", status_code=303)


@router.post("/integrations/hooks", response_class=HTMLResponse)
def add_hook(
    request: Request,
    db: SessionDep,
    user: CheckedUser,
    workflow_id: Annotated[str, Form()] = "",
    device_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    rate_per_minute: Annotated[str, Form()] = "",
) -> Response:
    """Make an incoming hook; its URL is shown on the answer only (its token is kept hashed)."""
    settings: Settings = request.app.state.settings
    try:
        rate = int(rate_per_minute) if rate_per_minute.strip() else settings.hook_rate_per_minute
        if not 1 <= rate <= 6000:
            raise ValueError
    except ValueError:
        return _integrations_page(
            request,
            db,
            user,
            422,
            hook_error=f"'{rate_per_minute}' is not a rate: give 1 to 6000 calls a minute",
        )
    try:
        hook, token = hooks.create_hook(
            db, user.account, workflow_id, device_id=device_id, name=name, rate_per_minute=rate
        )
    except AppError as exc:
        return _integrations_page(request, db, user, exc.status_code, hook_error=error_text(exc))
    url = hooks.hook_json(hook, settings.public_url, token)["url"]
    return _integrations_page(request, db, user, new_hook_url=url, new_hook_name=hook.name)


@router.post("/integrations/hooks/{hook_id}/revoke")
def revoke_hook(request: Request, hook_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Revoke an incoming hook: its URL answers 410 from now on."""
    hooks.revoke_hook(db, user.account.id, hook_id)
    return RedirectResponse("/integrations", status_code=303)
