"""The schedules API: cron schedules that queue runs of a workflow on a device.

Thin: each operation calls the service with the caller's account; the request's session commits.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from server.auth import CurrentAccount
from server.db import SessionDep
from server.errors import problem_responses
from server.schedules import service
from server.schedules.schemas import ScheduleCreate, ScheduleOut, ScheduleUpdate

router = APIRouter(tags=["schedules"])

_REFUSALS = problem_responses(
    409,
    422,
    c409="The device is revoked, the workflow has no published version, or that version names a package "
    "the denylist now denies (`errors` points at each package field)",
)


@router.post(
    "/workflows/{workflow_id}/schedules",
    response_model=ScheduleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Schedule runs of the published version on a device (cron)",
    responses=_REFUSALS,
)
def create_schedule(
    workflow_id: str, body: ScheduleCreate, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """A schedule that queues a run (trigger `schedule`) at every slot of `cron`, read in `timezone`."""
    schedule = service.create_schedule(
        session,
        account,
        workflow_id,
        device_id=body.device_id,
        cron=body.cron,
        timezone=body.timezone,
        inputs=body.inputs,
        enabled=body.enabled,
        global_denylist=request.app.state.settings.global_denylist,
    )
    return service.schedule_json(schedule)


@router.get("/schedules", response_model=list[ScheduleOut], summary="The account's schedules")
def list_schedules(
    session: SessionDep,
    account: CurrentAccount,
    workflow_id: Annotated[str | None, Query(alias="workflowId", max_length=36)] = None,
) -> list[dict[str, Any]]:
    """Every schedule of the account (of one workflow with `workflowId`), oldest first."""
    return [service.schedule_json(s) for s in service.list_schedules(session, account.id, workflow_id)]


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, summary="One schedule")
def read_schedule(schedule_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return service.schedule_json(service.get_schedule(session, account.id, schedule_id))


@router.patch(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    summary="Change a schedule (nextFireAt is recomputed)",
    responses=_REFUSALS,
)
def update_schedule(
    schedule_id: str, body: ScheduleUpdate, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """Only the fields given change. An enabled schedule must be runnable now (as when created)."""
    changes = service.ScheduleChanges(
        cron=body.cron,
        timezone=body.timezone,
        inputs=body.inputs,
        enabled=body.enabled,
        device_id=body.device_id,
    )
    schedule = service.update_schedule(
        session,
        account.id,
        schedule_id,
        changes,
        global_denylist=request.app.state.settings.global_denylist,
    )
    return service.schedule_json(schedule)


@router.delete(
    "/schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a schedule (its runs stay)",
    response_class=Response,
)
def delete_schedule(schedule_id: str, session: SessionDep, account: CurrentAccount) -> Response:
    service.delete_schedule(session, account.id, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
