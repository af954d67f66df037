"""The incoming hooks API: an account makes, lists and revokes hooks; whoever holds a hook's URL fires it.

Thin: each path operation checks who is calling, calls the service and shapes the answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from server.accounts.models import Account
from server.auth import CurrentAccount
from server.db import SessionDep, session_factory_from
from server.errors import NotFound, problem_responses
from server.hooks import service
from server.hooks.models import WorkflowHook
from server.hooks.schemas import HookIn, HookOut
from server.runs import service as runs
from server.runs.events import get_hub
from server.runs.schemas import RunSummaryOut
from server.settings import Settings
from server.workflows import service as workflows

router = APIRouter(tags=["hooks"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post(
    "/workflows/{workflow_id}/hooks",
    response_model=HookOut,
    status_code=201,
    summary="Make an incoming hook: a secret URL that queues runs of the workflow",
    responses=problem_responses(409, c409="The device was revoked, or the workflow has a hook of that name"),
)
def create_hook(
    workflow_id: str, body: HookIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """The hook and its URL, shown this once (only the token's hash is kept): POST JSON inputs to it."""
    settings = _settings(request)
    hook, token = service.create_hook(
        session,
        account,
        workflow_id,
        device_id=body.device_id,
        name=body.name,
        rate_per_minute=body.rate_per_minute or settings.hook_rate_per_minute,
    )
    return service.hook_json(hook, settings.public_url, token)


@router.get("/workflows/{workflow_id}/hooks", response_model=list[HookOut], summary="A workflow's hooks")
def list_hooks(
    workflow_id: str, request: Request, session: SessionDep, account: CurrentAccount
) -> list[dict[str, Any]]:
    """The workflow's hooks, oldest first, revoked ones included; 404 for a workflow not of this account."""
    workflow = workflows.get_workflow(session, account, workflow_id)
    hooks = service.list_hooks(session, account.id, workflow.id)
    return [service.hook_json(hook, _settings(request).public_url) for hook in hooks]


@router.post(
    "/workflows/{workflow_id}/hooks/{hook_id}/revoke", response_model=HookOut, summary="Revoke a hook"
)
def revoke_hook(
    workflow_id: str, hook_id: str, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """Its URL answers 410 from now on; runs it queued stay."""
    if service.get_hook(session, account.id, hook_id).workflow_id != workflow_id:
        raise NotFound(
            f"workflow {workflow_id} has no hook {hook_id}; list them with GET /api/v1/workflows/ID/hooks"
        )
    return service.hook_json(service.revoke_hook(session, account.id, hook_id), _settings(request).public_url)


@router.post(
    "/hooks/{token}",
    response_model=RunSummaryOut,
    status_code=201,
    summary="Fire an incoming hook: queue a run with the JSON body as its inputs",
    responses=problem_responses(
        409,
        410,
        429,
        c409="The workflow has nothing published, or the hook's device was revoked",
        c410="The hook was revoked",
        c429="Over the hook's calls a minute: wait Retry-After seconds",
    ),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": {"type": "object", "description": "the run's inputs"}}
            },
        }
    },
)
async def fire_hook(token: str, request: Request) -> Any:
    """No other credential: the URL is the secret. The body (a JSON object, or nothing) is checked
    against the workflow's `inputs` schema (422 with a pointer into the body). The run has trigger
    `webhook` and `triggeredBy` `hook:<name>`."""
    body = await request.body()
    return await run_in_threadpool(_fire, request, token, body)


def _fire(request: Request, token: str, body: bytes) -> dict[str, Any]:
    factory = session_factory_from(request)
    hook_id = service.count_hit(factory, token)
    inputs = service.parse_inputs(body)
    with factory.begin() as session:
        hook = session.get(WorkflowHook, hook_id)
        assert hook is not None
        account = session.get(Account, hook.account_id)
        assert account is not None
        run = runs.trigger_run(
            session,
            account,
            hook.workflow_id,
            hook.device_id,
            inputs,
            global_denylist=request.app.state.settings.global_denylist,
            trigger="webhook",
            triggered_by=f"hook:{hook.name}",
            notify=get_hub(request.app).notify,
            inputs_pointer="",
        )
        hook.last_used_at = run.created_at
        return runs.summary_json(run)
