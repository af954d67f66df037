"""Batches on the dashboard: queue one workflow on many phones (chosen, or every phone with a tag) from
the workflow page, and follow the batch live on its own page."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from interpreter import safe_json
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.runs_pages import latest_event_id
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep
from server.devices.models import Device
from server.errors import FieldProblem, ValidationFailed
from server.runs.batches import batch_json, trigger_batch
from server.runs.events import get_hub
from server.workflows.models import Workflow

router = dashboard_router()


@router.post("/workflows/{workflow_id}/batches")
def queue_batch(
    request: Request,
    workflow_id: str,
    db: SessionDep,
    user: CheckedUser,
    device_ids: Annotated[list[str] | None, Form()] = None,
    tag: Annotated[str, Form()] = "",
    inputs: Annotated[str, Form()] = "{}",
) -> Response:
    """Queue one run (trigger `manual`) per chosen phone, or per phone with the tag; show the batch."""
    try:
        parsed = safe_json.loads(inputs or "{}")
    except safe_json.UnsafeJson as exc:
        raise ValidationFailed([FieldProblem("/inputs" + exc.pointer, exc.message, exc.hint)]) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed([FieldProblem("/inputs", f"not JSON: {exc}", "write a JSON object")]) from exc
    if not isinstance(parsed, dict):
        raise ValidationFailed([FieldProblem("/inputs", "the inputs must be a JSON object", "write {...}")])
    tag = tag.strip().lower()
    if bool(device_ids) == bool(tag):
        raise ValidationFailed(
            [FieldProblem("/tag", "choose phones or give a tag, not both", "tick phones, or write one tag")]
        )
    batch_id, _runs = trigger_batch(
        db,
        user.account,
        workflow_id,
        device_ids=device_ids or None,
        tag=tag or None,
        inputs=parsed,
        global_denylist=request.app.state.settings.global_denylist,
        triggered_by=user.account.email,
        notify=get_hub(request.app).notify,
    )
    return RedirectResponse(f"/batches/{batch_id}", status_code=303)


def _batch_context(db: Session, user: DashboardUser, batch_id: str) -> dict[str, Any]:
    batch = batch_json(db, user.account.id, batch_id)
    workflow = db.get(Workflow, batch["workflowId"])
    device_ids = {run["deviceId"] for run in batch["runs"] if run["deviceId"]}
    rows = db.execute(select(Device.id, Device.name).where(Device.id.in_(device_ids)))
    names = {row.id: row.name for row in rows}
    return {
        "batch": batch,
        "workflow_name": workflow.name if workflow else batch["workflowId"],
        "names": names,
    }


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, batch_id: str, db: SessionDep, user: User) -> Response:
    """A batch: how many of its runs ended, by status, and each phone's run; live."""
    events_after = latest_event_id(db, user.account.id)
    context = _batch_context(db, user, batch_id)
    return page(request, "batch.html", user, events_after=events_after, **context)


@router.get("/batches/{batch_id}/_body", response_class=HTMLResponse)
def batch_body(request: Request, batch_id: str, db: SessionDep, user: User) -> Response:
    """The batch page's body alone, which live.js swaps in after an event of one of its runs."""
    return page(request, "_batch_body.html", user, **_batch_context(db, user, batch_id))
