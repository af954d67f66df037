"""`/api/v1/app-models`: an account's own app models (for the simulator), and recording into one."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from server.appmodels import service
from server.appmodels.schemas import (
    AppModelCreate,
    AppModelRead,
    AppModelSummary,
    AppModelUpdate,
    RecordIn,
    RecordOut,
)
from server.auth import CurrentAccount
from server.db import SessionDep, utcnow
from server.errors import problem_responses

router = APIRouter(tags=["app models"])


@router.post(
    "/app-models",
    response_model=AppModelRead,
    status_code=status.HTTP_201_CREATED,
    summary="Save an app model (or an empty one to record into)",
    responses=problem_responses(409, c409="The account has an app model of that name"),
)
def create_app_model(body: AppModelCreate, account: CurrentAccount, session: SessionDep) -> AppModelRead:
    return service.read(service.create(session, account, body.name, body.model, utcnow()))


@router.get("/app-models", response_model=list[AppModelSummary], summary="The account's app models")
def list_app_models(account: CurrentAccount, session: SessionDep) -> list[AppModelSummary]:
    return service.list_summaries(session, account)


@router.get("/app-models/{model_id}", response_model=AppModelRead, summary="One app model with its document")
def read_app_model(model_id: str, account: CurrentAccount, session: SessionDep) -> AppModelRead:
    return service.read(service.get(session, account, model_id))


@router.put(
    "/app-models/{model_id}",
    response_model=AppModelRead,
    summary="Rename an app model or replace its document",
    responses=problem_responses(409, c409="The account has an app model of that name"),
)
def update_app_model(
    model_id: str, body: AppModelUpdate, account: CurrentAccount, session: SessionDep
) -> AppModelRead:
    row = service.get(session, account, model_id)
    return service.read(service.update(session, row, body.name, body.model, utcnow()))


@router.delete(
    "/app-models/{model_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an app model"
)
def delete_app_model(model_id: str, account: CurrentAccount, session: SessionDep) -> Response:
    session.delete(service.get(session, account, model_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/app-models/{model_id}/record",
    response_model=RecordOut,
    summary="Record what a done inspect (its screen) or click (the screens and what it did) saw",
    responses=problem_responses(409, c409="The command is not done, or its answer cannot be read"),
)
def record_into(model_id: str, body: RecordIn, account: CurrentAccount, session: SessionDep) -> RecordOut:
    row = service.get(session, account, model_id)
    recorded = service.record(session, account, row, body.device_id, body.command_id, utcnow())
    return RecordOut(app_model=service.read(row), recorded=recorded)
