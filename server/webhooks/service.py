"""Webhook endpoints (register, list, change, delete) and enqueueing events for them.

Nothing here commits: the caller's transaction does. `enqueue` writes one delivery per
subscribed endpoint with `INSERT ... ON CONFLICT (endpoint_id, event_key) DO NOTHING`, in the
transaction that makes the event happen (a run's end, an approval's request), so an event is
enqueued exactly once — with it, never without it, never twice — however many server processes
see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from server.db import new_id, utcnow
from server.errors import FieldProblem, NotFound, ValidationFailed
from server.outgoing import literal_refusal
from server.runs.sql import dialect_insert, utc_ms
from server.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from server.webhooks.signing import new_message_id, new_secret

SUBSCRIBABLE = [event.value for event in WebhookEvent if event is not WebhookEvent.TEST]
MAX_ENDPOINTS = 20


def endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """An endpoint as the API shows it (its secret only when asked)."""
    out: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "createdAt": utc_ms(endpoint.created_at),
        "updatedAt": utc_ms(endpoint.updated_at),
    }
    if with_secret:
        out["secret"] = endpoint.secret
    return out


def delivery_json(
    delivery: WebhookDelivery, attempts: Iterable[WebhookAttempt] | None = None
) -> dict[str, Any]:
    """A delivery as the log shows it (with its attempts when given)."""

    def time(moment: datetime | None) -> str | None:
        return None if moment is None else utc_ms(moment)

    out: dict[str, Any] = {
        "id": delivery.id,
        "endpointId": delivery.endpoint_id,
        "eventType": delivery.event_type,
        "eventKey": delivery.event_key,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": time(delivery.next_attempt_at),
        "lastAttemptAt": time(delivery.last_attempt_at),
        "lastStatusCode": delivery.last_status_code,
        "lastResponse": delivery.last_response,
        "lastError": delivery.last_error,
        "createdAt": utc_ms(delivery.created_at),
        "completedAt": time(delivery.completed_at),
        "payload": json.loads(delivery.body),
    }
    if attempts is not None:
        out["attemptLog"] = [
            {
                "attempt": a.attempt,
                "startedAt": utc_ms(a.started_at),
                "durationMs": a.duration_ms,
                "statusCode": a.status_code,
                "response": a.response_excerpt,
                "error": a.error,
            }
            for a in attempts
        ]
    return out


def check_url(url: str, *, allow_private: bool, pointer: str = "/url") -> str:
    """An http(s) URL with a host, trimmed; 422 otherwise, and for an address written out that the
    server may not send to (`server.outgoing.address_refusal`: link-local never, loopback and private
    ones unless `allow_private`, the `webhook_allow_private_targets` setting).

    A name is checked when each attempt resolves it, against what it resolves to then."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            [
                FieldProblem(
                    pointer, f"'{url}' is not an http(s) URL", "give a URL like https://example.com/hooks"
                )
            ]
        )
    refusal = literal_refusal(url, allow_private)
    if refusal is not None:
        raise ValidationFailed([FieldProblem(pointer, f"'{url}' cannot be a webhook's target", refusal)])
    return url


def check_events(events: list[str], pointer: str = "/events") -> list[str]:
    """Known, subscribable event names, each once; 422 for an unknown one."""
    problems = [
        FieldProblem(
            f"{pointer}/{index}", f"'{name}' is not an event", f"choose from {', '.join(SUBSCRIBABLE)}"
        )
        for index, name in enumerate(events)
        if name not in SUBSCRIBABLE
    ]
    if not events:
        problems.append(
            FieldProblem(pointer, "no events chosen", f"choose one or more of {', '.join(SUBSCRIBABLE)}")
        )
    if problems:
        raise ValidationFailed(problems)
    return list(dict.fromkeys(events))


def create_endpoint(
    session: Session,
    account_id: str,
    *,
    url: str,
    events: list[str],
    allow_private: bool,
    description: str = "",
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (`allow_private`: the `webhook_allow_private_targets` setting)."""
    url, events = check_url(url, allow_private=allow_private), check_events(events)
    count = len(
        list(session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.account_id == account_id)))
    )
    if count >= MAX_ENDPOINTS:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/url", f"an account has at most {MAX_ENDPOINTS} webhook endpoints", "delete one first"
                )
            ]
        )
    now = utcnow()
    endpoint = WebhookEndpoint(
        account_id=account_id,
        url=url,
        description=description.strip(),
        events=events,
        secret=new_secret(),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id.lower(), WebhookEndpoint.account_id == account_id
        )
    ).first()
    if endpoint is None:
        raise NotFound(
            f"no webhook endpoint {endpoint_id} in this account; list them with GET /api/v1/webhooks"
        )
    return endpoint


def list_endpoints(session: Session, account_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def update_endpoint(
    session: Session,
    account_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> WebhookEndpoint:
    """Change an endpoint; None leaves a field as it is (`allow_private`: the
    `webhook_allow_private_targets` setting, for a new URL)."""
    endpoint = get_endpoint(session, account_id, endpoint_id)
    if url is not None:
        endpoint.url = check_url(url, allow_private=allow_private)
    if events is not None:
        endpoint.events = check_events(events)
    if description is not None:
        endpoint.description = description.strip()
    if enabled is not None:
        endpoint.enabled = enabled
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def rotate_secret(session: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint:
    """A new secret for the endpoint: the next attempts are signed with it."""
    endpoint = get_endpoint(session, account_id, endpoint_id)
    endpoint.secret = new_secret()
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def delete_endpoint(session: Session, account_id: str, endpoint_id: str) -> None:
    """Remove an endpoint and its deliveries."""
    session.delete(get_endpoint(session, account_id, endpoint_id))
    session.flush()


# --- events ---------------------------------------------------------------------------------


def event_body(event_type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The JSON text every attempt sends: `{"type", "timestamp", "data"}` (Standard Webhooks' shape)."""
    document = {"type": event_type, "timestamp": utc_ms(at or utcnow()), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def subscribed(session: Session, account_id: str, event_type: str) -> list[WebhookEndpoint]:
    """The account's enabled endpoints that listen for `event_type`."""
    return subscribed_to(session, account_id, [event_type])[event_type]


# Accounts that a statement of this session's request found without an enabled endpoint.
_WITHOUT_ENDPOINTS_KEY = "phoneflow_accounts_without_webhooks"


def has_endpoints(account_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the account `account_id` names has an enabled endpoint: for a statement a hot path runs
    anyway (runs.report's device lookup), so that most accounts, which have none, need no query of
    their own when their runs end (`note_without_endpoints`)."""
    return exists().where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.enabled.is_(True))


def note_without_endpoints(session: Session, account_id: str) -> None:
    """`has_endpoints` said no for this account in `session`'s request: its lookups answer none.

    For a request's own short-lived session only (an endpoint added meanwhile is missed, as one added
    right after the lookup always was)."""
    session.info.setdefault(_WITHOUT_ENDPOINTS_KEY, set()).add(account_id)


def subscribed_to(
    session: Session, account_id: str, event_types: Sequence[str]
) -> dict[str, list[WebhookEndpoint]]:
    """The account's enabled endpoints that listen for each of `event_types`, in one query."""
    if account_id in session.info.get(_WITHOUT_ENDPOINTS_KEY, ()):
        return {event_type: [] for event_type in event_types}
    endpoints = list(
        session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.account_id == account_id, WebhookEndpoint.enabled.is_(True)
            )
        )
    )
    return {
        event_type: [endpoint for endpoint in endpoints if event_type in endpoint.events]
        for event_type in event_types
    }


def enqueue(
    session: Session,
    account_id: str,
    event_type: str,
    event_key: str,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint] | None = None,
) -> int:
    """One delivery of this event for each subscribed endpoint, unless it is already there; how many
    this call made."""
    targets = subscribed(session, account_id, event_type) if endpoints is None else endpoints
    if not targets:
        return 0
    now = utcnow()
    body = event_body(event_type, data, now)
    made = 0
    for endpoint in targets:
        result = session.execute(
            dialect_insert(session, WebhookDelivery)
            .values(
                id=new_message_id(),
                account_id=account_id,
                endpoint_id=endpoint.id,
                event_type=event_type,
                event_key=event_key,
                body=body,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                round_failures=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_key"])
        )
        made += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return made


def send_test(session: Session, account_id: str, endpoint_id: str) -> WebhookDelivery:
    """Queue a `webhook.test` event for one endpoint (each call a new one)."""
    endpoint = get_endpoint(session, account_id, endpoint_id)
    key = f"webhook.test:{new_id()}"
    data = {"endpointId": endpoint.id, "message": "a test event from phoneflow"}
    enqueue(session, account_id, WebhookEvent.TEST.value, key, data, [endpoint])
    return session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_key == key
        )
    ).one()


# --- the log --------------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    account_id: str,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """An endpoint's deliveries, newest first."""
    endpoint = get_endpoint(session, account_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    return list(
        session.scalars(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit))
    )


def get_delivery(session: Session, account_id: str, delivery_id: str) -> WebhookDelivery:
    delivery = session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.account_id == account_id
        )
    ).first()
    if delivery is None:
        raise NotFound(
            f"no webhook delivery {delivery_id} in this account; list them with "
            "GET /api/v1/webhooks/{endpointId}/deliveries"
        )
    return delivery


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
    )


def redeliver(session: Session, account_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now (the same `webhook-id` and body), with a fresh round of retries."""
    delivery = get_delivery(session, account_id, delivery_id)
    delivery.status = DeliveryStatus.PENDING.value
    delivery.round_failures = 0
    delivery.next_attempt_at = utcnow()
    delivery.completed_at = None
    session.flush()
    return delivery
