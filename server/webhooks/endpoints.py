"""The webhooks API: endpoints, their delivery log, redelivery and a test event.

Thin: each path operation checks who is calling, calls the service and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from server.auth import CurrentAccount
from server.db import SessionDep
from server.settings import Settings
from server.webhooks import service
from server.webhooks.models import DeliveryStatus
from server.webhooks.schemas import DeliveryOut, EndpointIn, EndpointOut, EndpointPatchIn, SecretOut

router = APIRouter(tags=["webhooks"])


def _allow_private(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.webhook_allow_private_targets


@router.post("/webhooks", response_model=EndpointOut, status_code=201, summary="Register a webhook endpoint")
def create_endpoint(
    body: EndpointIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """The endpoint, with its signing secret (`whsec_…`) to check each request's `webhook-signature`."""
    endpoint = service.create_endpoint(
        session,
        account.id,
        url=body.url,
        events=body.events,
        description=body.description,
        allow_private=_allow_private(request),
    )
    return service.endpoint_json(endpoint, with_secret=True)


@router.get("/webhooks", response_model=list[EndpointOut], summary="The account's webhook endpoints")
def list_endpoints(session: SessionDep, account: CurrentAccount) -> list[dict[str, Any]]:
    return [service.endpoint_json(e) for e in service.list_endpoints(session, account.id)]


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut, summary="One webhook endpoint")
def get_endpoint(endpoint_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return service.endpoint_json(service.get_endpoint(session, account.id, endpoint_id))


@router.get(
    "/webhooks/{endpoint_id}/secret", response_model=SecretOut, summary="An endpoint's signing secret"
)
def get_secret(endpoint_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return {"secret": service.get_endpoint(session, account.id, endpoint_id).secret}


@router.post(
    "/webhooks/{endpoint_id}/secret/rotate", response_model=SecretOut, summary="A new signing secret"
)
def rotate_secret(endpoint_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """The next attempts (retries included) are signed with the new secret; the old one stops at once."""
    return {"secret": service.rotate_secret(session, account.id, endpoint_id).secret}


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointOut, summary="Change a webhook endpoint")
def update_endpoint(
    endpoint_id: str, body: EndpointPatchIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """URL, events, description; `enabled: false` holds its deliveries until it is enabled again."""
    endpoint = service.update_endpoint(
        session,
        account.id,
        endpoint_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
        allow_private=_allow_private(request),
    )
    return service.endpoint_json(endpoint)


@router.delete("/webhooks/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
def delete_endpoint(endpoint_id: str, session: SessionDep, account: CurrentAccount) -> Response:
    """The endpoint and its delivery log go; nothing more is sent to it."""
    service.delete_endpoint(session, account.id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{endpoint_id}/test",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a webhook.test event to the endpoint",
)
def send_test(endpoint_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """Queued now, sent within a second or so; follow it in the delivery log."""
    return service.delivery_json(service.send_test(session, account.id, endpoint_id))


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="An endpoint's delivery log, newest first",
)
def list_deliveries(
    endpoint_id: str,
    session: SessionDep,
    account: CurrentAccount,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """Each event sent (or being sent) to the endpoint, with its last answer."""
    deliveries = service.list_deliveries(session, account.id, endpoint_id, status=status, limit=limit)
    return [service.delivery_json(d) for d in deliveries]


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    summary="One delivery with every attempt",
)
def get_delivery(delivery_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    delivery = service.get_delivery(session, account.id, delivery_id)
    return service.delivery_json(delivery, service.attempts_of(session, delivery.id))


@router.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a delivery again",
)
def redeliver(delivery_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """The same body and `webhook-id` (receivers that saw it can tell), with a fresh round of retries."""
    return service.delivery_json(service.redeliver(session, account.id, delivery_id))
