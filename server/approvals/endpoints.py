"""The approvals API: devices ask and poll; people of the account list and answer.

Thin: each path operation checks who is calling, calls the service and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from server.approvals import service
from server.approvals.models import ApprovalStatus
from server.approvals.schemas import ApprovalOut, ApprovalRequestIn, DecisionIn
from server.auth import CurrentAccount, CurrentDevice
from server.db import SessionDep
from server.errors import problem_responses
from server.notifications.service import enqueue_approval_emails
from server.runs.events import get_hub
from server.runs.service import record_changes
from server.webhooks.events import approval_waiting

router = APIRouter(tags=["approvals"])


@router.post(
    "/devices/me/approvals",
    response_model=ApprovalOut,
    status_code=201,
    summary="Ask people to approve a step of one of this device's runs (idempotent)",
    responses={
        200: {"model": ApprovalOut, "description": "The same request again: the approval made before"}
    },
)
def request_approval(
    body: ApprovalRequestIn, request: Request, session: SessionDep, device: CurrentDevice
) -> Any:
    """A pending approval of `(runId, nodeId, visit)`, expiring `timeoutS` from now; sent again,
    the same approval (200). A run whose cancel was asked gets its approval `cancelled` at once."""
    approval, created = service.request_approval(
        session,
        device,
        run_id=body.run_id,
        node_id=body.node_id,
        visit=body.visit,
        message=body.message,
        approvers=body.approvers,
        timeout_s=body.timeout_s,
    )
    if created:
        # Not a change of the run, but open dashboards of it refresh and show the question.
        record_changes(session, approval.account_id, [approval.run_id], get_hub(request.app).notify)
        if approval.status == ApprovalStatus.PENDING.value:
            # Approvers are told (webhooks, e-mails), queued in this transaction: once per approval.
            approval_waiting(session, approval)
            enqueue_approval_emails(session, request.app.state.settings, approval)
    out = ApprovalOut.model_validate(service.approval_json(approval))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get(
    "/devices/me/approvals/{approval_id}",
    response_model=ApprovalOut,
    summary="One approval of this device's runs, with its status (poll it until it is decided)",
)
def read_device_approval(approval_id: str, session: SessionDep, device: CurrentDevice) -> dict[str, Any]:
    return service.approval_json(service.device_approval(session, device, approval_id))


@router.get("/approvals", response_model=list[ApprovalOut], summary="The account's approvals, newest first")
def list_approvals(
    session: SessionDep,
    account: CurrentAccount,
    status: ApprovalStatus | None = None,
    run_id: Annotated[str | None, Query(alias="runId", max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """`?status=pending` lists what waits for an answer; `runId` narrows to one run."""
    approvals = service.list_approvals(session, account.id, status=status, run_id=run_id, limit=limit)
    return [service.approval_json(a) for a in approvals]


@router.get("/approvals/{approval_id}", response_model=ApprovalOut, summary="One approval")
def read_approval(approval_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return service.approval_json(service.get_approval(session, account.id, approval_id))


@router.post(
    "/approvals/{approval_id}/decision",
    response_model=ApprovalOut,
    summary="Approve or reject a pending approval",
    responses=problem_responses(
        403,
        409,
        c403="The approval names its approvers and this account is not one of them",
        c409="The approval is no longer pending (answered, timed out or cancelled)",
    ),
)
def decide(
    approval_id: str, body: DecisionIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """Records the answer and who gave it (the account's email); the device hears it when it polls."""
    approval = service.decide(
        session, account, approval_id, approve=body.decision == "approve", note=body.note
    )
    # Open dashboards of the run refresh (the buttons go); sent only after the commit.
    record_changes(session, account.id, [approval.run_id], get_hub(request.app).notify)
    return service.approval_json(approval)
