"""The run page's controls besides cancel: Pause, Resume, and Re-run (a new run of the same version,
device and inputs)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from server.dashboard.pages_route import dashboard_router
from server.dashboard.session import CheckedUser
from server.db import SessionDep
from server.runs.events import get_hub
from server.runs.lease import commit_then_wait_out, run_lease_until
from server.runs.pausing import pause_run, resume_run
from server.runs.retries import retry_run

router = dashboard_router()


@router.post("/runs/{run_id}/retry")
def rerun(request: Request, run_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Queue the run again (trigger `retry`) and show the new run."""
    run = retry_run(
        db,
        user.account.id,
        run_id,
        global_denylist=request.app.state.settings.global_denylist,
        triggered_by=user.account.email,
        notify=get_hub(request.app).notify,
    )
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.post("/runs/{run_id}/pause")
def pause(request: Request, run_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Pause a running run: its phone holds after the step in flight."""
    run = pause_run(db, user.account.id, run_id, get_hub(request.app).notify)
    commit_then_wait_out(db, lambda s: run_lease_until(s, run.id))  # no step starts after this answer
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/resume")
def resume(request: Request, run_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Resume a paused run: its phone goes on with the next step."""
    resume_run(db, user.account.id, run_id, get_hub(request.app).notify)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
