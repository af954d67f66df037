"""Incoming hooks: made, listed and revoked by the account; fired by whoever holds the URL.

The API's functions add and flush only (the request's session owns the transaction), except
`count_hit`, which commits its own short transaction: a call counts against the rate limit even
when it is then refused (a flood of bad bodies is limited too).
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from interpreter import safe_json
from server.accounts.models import Account
from server.auth import hash_token
from server.db import utcnow
from server.devices.models import Device
from server.errors import (
    AppError,
    BadRequest,
    Conflict,
    FieldProblem,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from server.hooks.models import HookHit, WorkflowHook
from server.runs.sql import utc_ms
from server.workflows.service import get_workflow

TOKEN_PREFIX = "pf_hook_"
WINDOW = timedelta(minutes=1)
HITS_KEPT = timedelta(hours=1)


class HookGone(AppError):
    status_code = 410
    title = "Hook revoked"


def hook_json(hook: WorkflowHook, public_url: str, token: str | None = None) -> dict[str, Any]:
    """A hook as the API shows it; its URL (with the token) only when the token is given: at creation."""
    return {
        "id": hook.id,
        "workflowId": hook.workflow_id,
        "deviceId": hook.device_id,
        "name": hook.name,
        "tokenPrefix": hook.token_prefix,
        "ratePerMinute": hook.rate_per_minute,
        "createdAt": utc_ms(hook.created_at),
        "lastUsedAt": None if hook.last_used_at is None else utc_ms(hook.last_used_at),
        "revokedAt": None if hook.revoked_at is None else utc_ms(hook.revoked_at),
        "url": None if token is None else f"{public_url.rstrip('/')}/api/v1/hooks/{token}",
    }


def create_hook(
    session: Session, account: Account, workflow_id: str, *, device_id: str, name: str, rate_per_minute: int
) -> tuple[WorkflowHook, str]:
    """A new hook of the workflow on one of the account's devices, and its token (shown once)."""
    get_workflow(session, account, workflow_id)  # 404 for another account's workflow
    device = session.scalars(
        select(Device).where(Device.id == device_id, Device.account_id == account.id)
    ).first()
    if device is None:
        raise NotFound(f"no device {device_id} in this account; list devices with GET /api/v1/devices")
    if device.revoked_at is not None:
        raise Conflict(f"device {device_id} was revoked and takes no runs; pair a device again and hook it")
    name = name.strip()
    if not name:
        raise ValidationFailed(
            [FieldProblem("/name", "a hook needs a name", "name it after who calls it, e.g. crm")]
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    hook = WorkflowHook(
        account_id=account.id,
        workflow_id=workflow_id,
        device_id=device.id,
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[: len(TOKEN_PREFIX) + 4],
        rate_per_minute=rate_per_minute,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(hook)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"workflow {workflow_id} already has a hook named {name!r}; name this one otherwise, "
            "or revoke that one first"
        ) from None
    return hook, token


def list_hooks(session: Session, account_id: str, workflow_id: str | None = None) -> list[WorkflowHook]:
    """The account's hooks (of one workflow when given), oldest first, revoked ones included."""
    query = select(WorkflowHook).where(WorkflowHook.account_id == account_id)
    if workflow_id is not None:
        query = query.where(WorkflowHook.workflow_id == workflow_id)
    return list(session.scalars(query.order_by(WorkflowHook.created_at, WorkflowHook.id)))


def get_hook(session: Session, account_id: str, hook_id: str) -> WorkflowHook:
    hook = session.scalars(
        select(WorkflowHook).where(WorkflowHook.id == hook_id.lower(), WorkflowHook.account_id == account_id)
    ).first()
    if hook is None:
        raise NotFound(
            f"no hook {hook_id} in this account; list a workflow's hooks with GET /api/v1/workflows/ID/hooks"
        )
    return hook


def revoke_hook(session: Session, account_id: str, hook_id: str) -> WorkflowHook:
    """Revoke a hook: its URL answers 410 from now on. Revoking twice is harmless."""
    hook = get_hook(session, account_id, hook_id)
    if hook.revoked_at is None:
        hook.revoked_at = utcnow()
        session.flush()
    return hook


# --- firing ---------------------------------------------------------------------------------


def count_hit(session_factory: sessionmaker[Session], token: str, now: datetime | None = None) -> str:
    """Find the hook of `token` and count this call (own transaction); the hook's id.

    404 for no such hook, 410 for a revoked one, 429 with Retry-After when the calls of the last
    60 seconds, this one included, are over its rate. The hook's row is locked while counting
    (PostgreSQL; SQLite's writers take turns anyway), so concurrent calls count one by one.
    """
    now = now or utcnow()
    with session_factory.begin() as session:
        hook = session.scalars(
            select(WorkflowHook).where(WorkflowHook.token_hash == hash_token(token)).with_for_update()
        ).first()
        if hook is None:
            raise NotFound("no hook at this address: check the URL, or make a hook on the workflow's page")
        if hook.revoked_at is not None:
            raise HookGone(
                f"hook {hook.name!r} was revoked at {utc_ms(hook.revoked_at)}; ask for a new hook URL"
            )
        session.add(HookHit(hook_id=hook.id, at=now))
        session.flush()
        count, oldest = session.execute(
            select(func.count(), func.min(HookHit.at)).where(
                HookHit.hook_id == hook.id, HookHit.at > now - WINDOW
            )
        ).one()
        session.execute(delete(HookHit).where(HookHit.hook_id == hook.id, HookHit.at < now - HITS_KEPT))
        hook_id, limit, name = hook.id, hook.rate_per_minute, hook.name
    if count > limit:
        oldest_at = oldest if isinstance(oldest, datetime) else datetime.fromisoformat(str(oldest))
        if oldest_at.tzinfo is None:
            oldest_at = oldest_at.replace(tzinfo=UTC)
        retry_after = max(1, math.ceil((oldest_at + WINDOW - now).total_seconds()))
        raise RateLimited(
            f"hook {name!r} takes {limit} calls a minute and had {count} in the last one; "
            f"wait {retry_after} s",
            retry_after,
        )
    return hook_id


def parse_inputs(body: bytes) -> dict[str, Any]:
    """The body as the run's inputs: a JSON object (an empty body is `{}`)."""
    if not body.strip():
        return {}
    try:
        value = safe_json.loads(body)  # the JSON guard's refusals, whatever the content type said
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            f"malformed JSON: {exc}; send the run's inputs as a JSON object", title="Malformed JSON"
        ) from None
    if not isinstance(value, dict):
        raise ValidationFailed(
            [
                FieldProblem(
                    "",
                    f"the body is a JSON {type(value).__name__}, not an object",
                    'send the inputs as an object, e.g. {"order": "A-17"}',
                )
            ]
        )
    return value
