"""`/api/v1/workflows`: create, list, read, version, publish, simulate; and the workflow JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from interpreter.schema import workflow_schema
from server.auth import CurrentAccount
from server.db import SessionDep
from server.denylist.service import effective_denylist
from server.errors import problem_responses
from server.settings import Settings
from server.workflows import service
from server.workflows.models import Workflow, WorkflowVersion
from server.workflows.schemas import (
    DraftSimulateRequest,
    DraftSimulationResult,
    PublishRequest,
    SimulateRequest,
    SimulationResult,
    ValidateRequest,
    ValidationReport,
    VersionCreate,
    VersionCreated,
    VersionDiff,
    VersionRead,
    WorkflowCreate,
    WorkflowCreated,
    WorkflowDetail,
    WorkflowRead,
    WorkflowUpdate,
)
from server.workflows.simulation import ScreenOptions, simulate

router = APIRouter(tags=["workflows"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _version_read(version: WorkflowVersion) -> VersionRead:
    return VersionRead(
        id=version.id,
        workflow_id=version.workflow_id,
        number=version.number,
        definition=version.definition,
        warnings=version.problems,
        created_at=version.created_at,
    )


def _detail(session: SessionDep, workflow: Workflow) -> WorkflowDetail:
    latest = service.latest_version(session, workflow)
    return WorkflowDetail.model_validate(
        {**WorkflowRead.model_validate(workflow).model_dump(), "latest_version": _version_read(latest)}
    )


@router.get(
    "/schemas/workflow.json",
    summary="The JSON Schema of a workflow definition",
    response_model=dict[str, Any],
)
def read_workflow_schema() -> dict[str, Any]:
    return workflow_schema()


@router.post(
    "/workflows",
    response_model=WorkflowCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a workflow with its first version (422 lists every validation problem)",
)
def create_workflow(
    body: WorkflowCreate, request: Request, account: CurrentAccount, session: SessionDep
) -> WorkflowCreated:
    warnings = service.validate_definition(
        body.definition, effective_denylist(session, account.id, _settings(request))
    )
    workflow, version = service.create_workflow(session, account.id, body.name, body.definition, warnings)
    return WorkflowCreated(id=workflow.id, version_id=version.id, number=version.number, warnings=warnings)


@router.post(
    "/workflows/validate",
    response_model=ValidationReport,
    summary="Validate a draft definition with the account's denylist; nothing is saved",
)
def validate_draft(
    body: ValidateRequest, request: Request, account: CurrentAccount, session: SessionDep
) -> ValidationReport:
    denylist = effective_denylist(session, account.id, _settings(request))
    return ValidationReport.model_validate(service.draft_problems(body.definition, denylist))


@router.post(
    "/simulate",
    response_model=DraftSimulationResult,
    summary="Run a draft on the simulator (nothing saved): the trace and the phone's screens per step",
    responses=problem_responses(422),
)
def simulate_draft(
    body: DraftSimulateRequest, request: Request, account: CurrentAccount, session: SessionDep
) -> DraftSimulationResult:
    settings = _settings(request)
    denylist = effective_denylist(session, account.id, settings)
    warnings = service.validate_definition(body.definition, denylist)
    screens = ScreenOptions(body.screen_width, body.screen_format) if body.screens else None
    result = simulate(
        body.definition,
        inputs=body.inputs,
        apps=body.apps,
        scenario=body.scenario,
        denylist=denylist,
        live_http=settings.simulate_live_http,
        allow_private=settings.webhook_allow_private_targets,
        screens=screens,
    )
    shown = [{"pointer": w["pointer"], "message": w["message"], "hint": w["hint"]} for w in warnings]
    return DraftSimulationResult.model_validate({**result, "warnings": shown})


@router.get("/workflows", response_model=list[WorkflowRead], summary="The account's workflows")
def list_workflows(account: CurrentAccount, session: SessionDep) -> list[WorkflowRead]:
    return [WorkflowRead.model_validate(w) for w in service.list_workflows(session, account)]


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail, summary="One workflow, latest version")
def read_workflow(workflow_id: str, account: CurrentAccount, session: SessionDep) -> WorkflowDetail:
    return _detail(session, service.get_workflow(session, account, workflow_id))


@router.patch(
    "/workflows/{workflow_id}",
    response_model=WorkflowDetail,
    summary="Rename a workflow, or set its automatic retry",
)
def update_workflow(
    workflow_id: str, body: WorkflowUpdate, account: CurrentAccount, session: SessionDep
) -> WorkflowDetail:
    workflow = service.get_workflow(session, account, workflow_id)
    if body.name is not None:
        workflow.name = body.name
    if body.auto_retry is not None:
        workflow.auto_retry_max = body.auto_retry.max
        workflow.auto_retry_backoff_s = body.auto_retry.backoff_s
    session.flush()
    return _detail(session, workflow)


@router.get(
    "/workflows/{workflow_id}/versions",
    response_model=list[VersionRead],
    summary="Every version, oldest first",
)
def list_versions(workflow_id: str, account: CurrentAccount, session: SessionDep) -> list[VersionRead]:
    workflow = service.get_workflow(session, account, workflow_id)
    return [_version_read(v) for v in service.list_versions(session, workflow)]


@router.get(
    "/workflows/{workflow_id}/versions/{version_id}", response_model=VersionRead, summary="One version"
)
def read_version(
    workflow_id: str, version_id: str, account: CurrentAccount, session: SessionDep
) -> VersionRead:
    workflow = service.get_workflow(session, account, workflow_id)
    return _version_read(service.get_version(session, workflow, version_id))


@router.get(
    "/workflows/{workflow_id}/versions/{version_id}/diff/{other_version_id}",
    response_model=VersionDiff,
    response_model_exclude_unset=True,
    summary="What changed from one version to another (nodes added, removed, changed per field)",
)
def diff_versions(
    workflow_id: str, version_id: str, other_version_id: str, account: CurrentAccount, session: SessionDep
) -> VersionDiff:
    workflow = service.get_workflow(session, account, workflow_id)
    return VersionDiff.model_validate(
        service.diff_versions(
            service.get_version(session, workflow, version_id),
            service.get_version(session, workflow, other_version_id),
        )
    )


@router.post(
    "/workflows/{workflow_id}/versions",
    response_model=VersionCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Save a new immutable version (422 lists every validation problem)",
)
def create_version(
    workflow_id: str, body: VersionCreate, request: Request, account: CurrentAccount, session: SessionDep
) -> VersionCreated:
    workflow = service.get_workflow(session, account, workflow_id)
    warnings = service.validate_definition(
        body.definition, effective_denylist(session, account.id, _settings(request))
    )
    version = service.store_version(session, workflow, body.definition, warnings)
    return VersionCreated(id=version.id, workflow_id=workflow.id, number=version.number, warnings=warnings)


@router.post(
    "/workflows/{workflow_id}/publish",
    response_model=WorkflowDetail,
    summary="Make a version the one that runs",
)
def publish(
    workflow_id: str, body: PublishRequest, account: CurrentAccount, session: SessionDep
) -> WorkflowDetail:
    workflow = service.get_workflow(session, account, workflow_id)
    service.publish(session, workflow, body.version_id)
    session.flush()
    return _detail(session, workflow)


@router.post(
    "/workflows/{workflow_id}/simulate",
    response_model=SimulationResult,
    summary="Run a version on the simulator and return its trace",
    responses=problem_responses(422),
)
def simulate_workflow(
    workflow_id: str, body: SimulateRequest, request: Request, account: CurrentAccount, session: SessionDep
) -> SimulationResult:
    workflow = service.get_workflow(session, account, workflow_id)
    if body.version_id is not None:
        version = service.get_version(session, workflow, body.version_id)
    elif workflow.published_version_id is not None:
        version = service.get_version(session, workflow, workflow.published_version_id)
    else:
        version = service.latest_version(session, workflow)
    settings = _settings(request)
    result = simulate(
        version.definition,
        inputs=body.inputs,
        apps=body.apps,
        scenario=body.scenario,
        denylist=effective_denylist(session, account.id, settings),
        live_http=settings.simulate_live_http,
        allow_private=settings.webhook_allow_private_targets,
    )
    return SimulationResult.model_validate(
        {**result, "workflowId": workflow.id, "workflowVersionId": version.id}
    )
