"""The Workflows pages: list, versions and publishing, validation problems, simulate."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from interpreter import safe_json
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import error_text, page
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep
from server.denylist.service import effective_denylist
from server.devices.service import list_devices
from server.errors import AppError, NotFound, ValidationFailed
from server.runs.events import get_hub
from server.runs.service import trigger_run
from server.schedules import service as schedules
from server.workflows import service
from server.workflows.models import Workflow
from server.workflows.simulation import simulate

router = dashboard_router()


class FormProblem(Exception):
    """A form field that is not what it must be; carries problems like the API's."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(problems[0]["message"])
        self.problems = problems


def _parse_inputs(text: str) -> dict[str, Any]:
    inputs = _parse_json(text or "{}", "the inputs")
    if not isinstance(inputs, dict):
        raise FormProblem(
            [{"pointer": "", "message": "the inputs must be a JSON object", "hint": 'e.g. {"order": "A-1"}'}]
        )
    return inputs


def _parse_json(text: str, field: str) -> Any:
    """A form field's JSON, with the refusals the API gives a JSON body (interpreter/safe_json.py): too
    deep, a number beyond 64 bits or a double, NaN, a NUL or a lone surrogate."""
    try:
        return safe_json.loads(text)
    except safe_json.UnsafeJson as exc:
        where = f" at {exc.pointer}" if exc.pointer else ""
        raise FormProblem(
            [{"pointer": exc.pointer, "message": f"{field}{where}: {exc.message}", "hint": exc.hint}]
        ) from None
    except json.JSONDecodeError as exc:
        raise FormProblem(
            [
                {
                    "pointer": "",
                    "message": f"{field} is not valid JSON: {exc.msg} "
                    f"at line {exc.lineno}, column {exc.colno}",
                    "hint": "fix the JSON syntax (quotes around names, no trailing commas)",
                }
            ]
        ) from None


def _problems(exc: AppError) -> list[dict[str, str]]:
    if isinstance(exc, ValidationFailed):
        return [e.to_json() for e in exc.errors]
    return [{"pointer": "", "message": exc.message, "hint": ""}]


def _validated(
    request: Request, db: Session, user: DashboardUser, definition_text: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    definition = _parse_json(definition_text, "the definition")
    denylist = effective_denylist(db, user.account.id, request.app.state.settings)
    try:
        warnings = service.validate_definition(definition, denylist)
    except ValidationFailed as exc:
        raise FormProblem(
            [{**p, "pointer": p["pointer"].removeprefix("/definition")} for p in _problems(exc)]
        ) from None
    return definition, warnings


@router.get("/workflows", response_class=HTMLResponse)
def workflows_page(request: Request, db: SessionDep, user: User) -> Response:
    """The account's workflows and the form for a new one."""
    return _list_page(request, db, user)


def _list_page(
    request: Request, db: Session, user: DashboardUser, status_code: int = 200, **extra: Any
) -> Response:
    workflows = service.list_workflows(db, user.account)
    published = {}
    for workflow in workflows:
        if workflow.published_version_id:
            version = service.get_version(db, workflow, workflow.published_version_id)
            published[workflow.id] = f"v{version.number}"
    return page(
        request, "workflows.html", user, status_code, workflows=workflows, published=published, **extra
    )


@router.post("/workflows", response_class=HTMLResponse)
def create_workflow(
    request: Request,
    db: SessionDep,
    user: CheckedUser,
    name: Annotated[str, Form()] = "",
    definition: Annotated[str, Form()] = "",
) -> Response:
    """Validate and save a new workflow with its first version."""
    try:
        if not name.strip():
            raise FormProblem(
                [{"pointer": "", "message": "the workflow needs a name", "hint": "type a name"}]
            )
        parsed, warnings = _validated(request, db, user, definition)
    except FormProblem as exc:
        return _list_page(
            request, db, user, 422, problems=exc.problems, form_name=name, form_definition=definition
        )
    workflow, _version = service.create_workflow(db, user.account.id, name.strip(), parsed, warnings)
    return RedirectResponse(f"/workflows/{workflow.id}", status_code=303)


def _detail_page(
    request: Request,
    db: Session,
    user: DashboardUser,
    workflow: Workflow,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    versions = service.list_versions(db, workflow)
    latest = versions[-1]
    extra.setdefault("form_definition", json.dumps(latest.definition, indent=2, ensure_ascii=False))
    every_device = list_devices(db, user.account)
    devices = [d for d in every_device if d.revoked_at is None]
    return page(
        request,
        "workflow.html",
        user,
        status_code,
        workflow=workflow,
        versions=list(reversed(versions)),
        devices=devices,
        device_names={d.id: d.name for d in every_device},
        schedules=schedules.list_schedules(db, user.account.id, workflow.id),
        **extra,
    )


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
def workflow_page(request: Request, workflow_id: str, db: SessionDep, user: User) -> Response:
    """One workflow: versions, publishing, a new version, simulate, run on a phone."""
    return _detail_page(request, db, user, service.get_workflow(db, user.account, workflow_id))


@router.post("/workflows/{workflow_id}/versions", response_class=HTMLResponse)
def save_version(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    definition: Annotated[str, Form()] = "",
) -> Response:
    """Validate and save a new immutable version of a workflow."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    try:
        parsed, warnings = _validated(request, db, user, definition)
    except FormProblem as exc:
        return _detail_page(
            request, db, user, workflow, 422, problems=exc.problems, form_definition=definition
        )
    service.store_version(db, workflow, parsed, warnings)
    return RedirectResponse(f"/workflows/{workflow.id}", status_code=303)


@router.post("/workflows/{workflow_id}/publish")
def publish(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    version_id: Annotated[str, Form()] = "",
) -> Response:
    """Make one version the one that runs."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    service.publish(db, workflow, version_id)
    return RedirectResponse(f"/workflows/{workflow.id}", status_code=303)


@router.post("/workflows/{workflow_id}/simulate", response_class=HTMLResponse)
def simulate_version(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    version_id: Annotated[str, Form()] = "",
    inputs: Annotated[str, Form()] = "{}",
) -> Response:
    """Run a version on the simulator with the given inputs and show its trace."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    version = service.get_version(db, workflow, version_id)
    try:
        parsed_inputs = _parse_inputs(inputs)
        result = simulate(
            version.definition,
            inputs=parsed_inputs,
            apps=None,
            scenario=None,
            denylist=effective_denylist(db, user.account.id, request.app.state.settings),
        )
    except FormProblem as exc:
        return _detail_page(
            request, db, user, workflow, 422, sim_error=exc.problems[0]["message"], form_inputs=inputs
        )
    except AppError as exc:
        return _detail_page(
            request, db, user, workflow, exc.status_code, sim_error=error_text(exc), form_inputs=inputs
        )
    return _detail_page(request, db, user, workflow, simulation=result, form_inputs=inputs)


@router.post("/workflows/{workflow_id}/runs", response_class=HTMLResponse)
def queue_run(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    device_id: Annotated[str, Form()] = "",
    inputs: Annotated[str, Form()] = "{}",
) -> Response:
    """Queue a run (trigger `manual`) of the published version on one phone, then show it."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    try:
        run = trigger_run(
            db,
            user.account,
            workflow.id,
            device_id,
            _parse_inputs(inputs),
            global_denylist=request.app.state.settings.global_denylist,
            trigger="manual",
            triggered_by=user.account.email,
            notify=get_hub(request.app).notify,
        )
    except FormProblem as exc:
        return _detail_page(
            request, db, user, workflow, 422, run_error=exc.problems[0]["message"], form_run_inputs=inputs
        )
    except AppError as exc:
        return _detail_page(
            request, db, user, workflow, exc.status_code, run_error=error_text(exc), form_run_inputs=inputs
        )
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.post("/workflows/{workflow_id}/schedules", response_class=HTMLResponse)
def add_schedule(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    device_id: Annotated[str, Form()] = "",
    cron: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
    inputs: Annotated[str, Form()] = "{}",
) -> Response:
    """Schedule runs of the published version on one phone (cron), then show the workflow."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    form = {"form_cron": cron, "form_timezone": timezone, "form_schedule_inputs": inputs}
    try:
        schedules.create_schedule(
            db,
            user.account,
            workflow.id,
            device_id=device_id,
            cron=cron.strip(),
            timezone=timezone.strip() or "UTC",
            inputs=_parse_inputs(inputs),
            global_denylist=request.app.state.settings.global_denylist,
        )
    except FormProblem as exc:
        return _detail_page(
            request, db, user, workflow, 422, schedule_error=exc.problems[0]["message"], **form
        )
    except AppError as exc:
        return _detail_page(
            request, db, user, workflow, exc.status_code, schedule_error=error_text(exc), **form
        )
    return RedirectResponse(f"/workflows/{workflow.id}#schedules", status_code=303)


def _set_enabled(
    request: Request, db: Session, user: DashboardUser, workflow_id: str, schedule_id: str, enabled: bool
) -> Response:
    workflow = service.get_workflow(db, user.account, workflow_id)
    schedule = schedules.get_schedule(db, user.account.id, schedule_id)
    if schedule.workflow_id != workflow.id:
        raise NotFound(f"no schedule {schedule_id} on this workflow")
    try:
        schedules.update_schedule(
            db,
            user.account.id,
            schedule.id,
            schedules.ScheduleChanges(enabled=enabled),
            global_denylist=request.app.state.settings.global_denylist,
        )
    except AppError as exc:
        return _detail_page(request, db, user, workflow, exc.status_code, schedule_error=error_text(exc))
    return RedirectResponse(f"/workflows/{workflow.id}#schedules", status_code=303)


@router.post("/workflows/{workflow_id}/schedules/{schedule_id}/enable", response_class=HTMLResponse)
def enable_schedule(
    request: Request, workflow_id: str, schedule_id: str, db: SessionDep, user: CheckedUser
) -> Response:
    """Switch a schedule on (refused, with the reason, when it could not run now)."""
    return _set_enabled(request, db, user, workflow_id, schedule_id, True)


@router.post("/workflows/{workflow_id}/schedules/{schedule_id}/disable", response_class=HTMLResponse)
def disable_schedule(
    request: Request, workflow_id: str, schedule_id: str, db: SessionDep, user: CheckedUser
) -> Response:
    """Switch a schedule off: it keeps its settings and fires no more until enabled."""
    return _set_enabled(request, db, user, workflow_id, schedule_id, False)


@router.post("/workflows/{workflow_id}/schedules/{schedule_id}/delete")
def delete_schedule(
    request: Request, workflow_id: str, schedule_id: str, db: SessionDep, user: CheckedUser
) -> Response:
    """Remove a schedule (the runs it made stay)."""
    workflow = service.get_workflow(db, user.account, workflow_id)
    schedule = schedules.get_schedule(db, user.account.id, schedule_id)
    if schedule.workflow_id != workflow.id:
        raise NotFound(f"no schedule {schedule_id} on this workflow")
    schedules.delete_schedule(db, user.account.id, schedule.id)
    return RedirectResponse(f"/workflows/{workflow.id}#schedules", status_code=303)
