"""The runs API: `runs.report`, list and read, trigger, claim, cancel, pause, resume, retry, export,
artifacts, stats.

Thin: each path operation checks who is calling, calls the service and shapes the answer.
The request's session commits when the operation returns; `run.updated` goes out after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.artifact_store.service import read_artifact, save_artifact
from server.auth import (
    BearerCredentials,
    CurrentAccount,
    CurrentDevice,
    DeviceRef,
    caller_name,
)
from server.db import SessionDep, after_commit, in_one_transaction
from server.devices.models import Device
from server.errors import FieldProblem, NotFound, PayloadTooLarge, ValidationFailed, problem_responses
from server.metrics import count_reported
from server.runs import batches, frames, listing, pausing, report, retries, run_logs, service, stats, video
from server.runs import export as export_module
from server.runs.artifacts import artifact_response, check_name, stored_type
from server.runs.claimer import claimer
from server.runs.events import get_hub
from server.runs.lease import commit_then_wait_out, run_lease_until
from server.runs.lifecycle import runs_ended
from server.runs.listing import DEFAULT_SORT, RunFilters, RunSort
from server.runs.models import Artifact, Run
from server.runs.report_device import reporting_device
from server.runs.rollup import record_step_failures
from server.runs.schemas import (
    ArtifactOut,
    BatchOut,
    ClaimedRunOut,
    ClaimIn,
    RunOut,
    RunPageOut,
    RunReportIn,
    RunsReportIn,
    RunsReportOut,
    RunSummaryOut,
    StatsOut,
    Trigger,
    TriggerBatchIn,
    TriggerRunIn,
)
from server.schemas import UtcDateTime
from server.workflows.models import WorkflowVersion

# Unknown query parameters are refused for every API route (server.errors.reject_unknown_query_params).
router = APIRouter(tags=["runs"])


class _ReportRequest(Request):
    """A request whose JSON body is parsed and validated as `RunsReportIn` in one pass.

    FastAPI decodes a JSON body with `json.loads` and then validates the Python objects: for a
    batch of 50 runs of 50 trace events that is two walks over half a megabyte, most of the
    server's time. pydantic validates the raw bytes in one walk, and FastAPI's own validation
    then accepts the finished model as it is (pydantic does not revalidate instances). When the
    fast path fails, the body goes FastAPI's usual way, so every error is worded as before.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = RunsReportIn.model_validate_json(body)
            except ValidationError:
                self._json = json.loads(body)
        return self._json


class _ReportRoute(APIRoute):
    """The route of `runs.report`: its handler reads the body through `_ReportRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fast_body_handler(request: Request) -> Response:
            return await handler(_ReportRequest(request.scope, request.receive, request._send))

        return fast_body_handler


def apply_reports(
    session: Session,
    app: FastAPI,
    device: Device | DeviceRef,
    runs: Sequence[RunReportIn],
    *,
    cancels: bool = True,
) -> list[dict[str, Any]]:
    """Store reports of `device`'s runs (runs.report's rules) in `session`'s transaction; the answer
    per run: `{"id", "result", "reason", "cancelRequested"}` (the step gate carries one too, without
    looking for cancels: `cancels=False`, the gate answers that itself)."""
    ingested = report.ingest_reports(session, account_id=device.account_id, device_id=device.id, reports=runs)
    results, changed = ingested.results, ingested.changed
    rows = service.record_changes(
        session, device.account_id, changed, get_hub(app).notify, ingested.rows, written=ingested.recorded
    )
    stored = set(changed)
    ended = {r.id: r for r in reversed(runs) if r.id in stored and r.status.terminal}  # the first of each
    runs_ended(session, device.account_id, list(ended), rows, counted=ingested.counted)
    record_step_failures(session, device.account_id, ended.values())
    after_commit(session, lambda: count_reported([r.result for r in results]))
    cancelled: set[str] = set()
    if cancels:
        # The changed runs were just read; only the others need a look.
        cancelled = {run.id for run in rows.values() if service.cancel_requested(run, device.id)}
        unread = [r.id for r in results if r.id not in rows]
        if unread:
            cancelled.update(service.cancel_requested_run_ids(session, device.id, unread))
    return [
        {"id": r.id, "result": r.result, "reason": r.reason, "cancelRequested": r.id in cancelled}
        for r in results
    ]


async def report_runs(body: RunsReportIn, request: Request, credentials: BearerCredentials) -> JSONResponse:
    """Store 1–100 runs of the calling device. Per run: `stored`, `unchanged` or `rejected` with a reason."""

    def work(session: Session) -> list[dict[str, Any]]:
        return apply_reports(session, request.app, reporting_device(session, credentials), body.runs)

    return JSONResponse({"runs": await in_one_transaction(request, work)})


router.add_api_route(
    "/runs.report",
    report_runs,
    methods=["POST"],
    response_model=RunsReportOut,
    summary="Report runs from a device (idempotent)",
    route_class_override=_ReportRoute,
)


# Claims next to runs.report: phones call both all the time, and routes are matched in order.
@router.post(
    "/devices/me/claim",
    response_model=ClaimedRunOut,
    summary="Claim the next queued run of this device (optionally reporting the run it just ended)",
    responses={
        204: {"description": "No queued run for this device (and no report carried)"},
        **problem_responses(
            422, c422="The body does not validate (a carried report's problems point at /report/...)"
        ),
    },
)
async def claim_run(
    request: Request, credentials: BearerCredentials, body: ClaimIn | None = None
) -> Response:
    """The oldest queued run of the calling device, now `running` and handed to this caller only, with
    the definition of its workflow version and the account's effective package denylist
    (`{"version", "patterns"}`) that the run must obey; 204 when there is none. A queued run whose
    version names a package the denylist now denies ends `failed` instead of being handed out.
    With `{"lease": true}` the run comes with a lease (`leaseMs`, as the step gate grants one).
    With `{"report": <run>}` the final report of the run the phone just ended is stored first, by
    runs.report's rules, in the same transaction: the answer's `report` says what became of it, and
    with no run queued the answer is 200 with `"run": null` (not 204)."""
    return await answer_claim(request, credentials, body)


async def answer_claim(request: Request, credentials: BearerCredentials, body: ClaimIn | None) -> Response:
    """What `claim_run` answers: its code, shared with the claim lane (server/runs/claim_lane.py)."""
    settings = request.app.state.settings
    global_denylist = settings.global_denylist
    lease_s: float = settings.run_lease_s
    lease = lease_s if body is not None and body.lease and lease_s > 0 else None
    carried = body.report if body is not None else None
    notify = get_hub(request.app).notify

    def work(session: Session) -> Response:
        device, effective = claimer(session, credentials, global_denylist, carried=carried)
        # The report first, by runs.report's own code: a run it ends is ended (its retry queued, its
        # webhooks and rollup written) before the claim looks for the next one.
        reported = apply_reports(session, request.app, device, [carried])[0] if carried is not None else None
        claimed = service.claim_run(session, device, effective, notify, lease_s=lease)
        if claimed is None:
            if reported is None:
                return Response(status_code=204)
            return JSONResponse(
                {"run": None, "report": reported, "acceptsReport": True, "grantsLease": lease_s > 0}
            )
        run, definition = claimed
        answer: dict[str, Any] = {
            "run": service.summary_json(run),
            "definition": definition,
            "denylist": effective.to_json(),
            "frames": frames.run_frames(definition, run.frames),
            "acceptsReport": True,
            "grantsLease": lease_s > 0,
        }
        if lease is not None:
            answer["leaseMs"] = int(lease * 1000)
        if reported is not None:
            answer["report"] = reported
        return JSONResponse(answer)

    return await in_one_transaction(request, work)


def run_filters(
    status: RunStatus | None = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId", max_length=36)] = None,
    device_id: Annotated[str | None, Query(alias="deviceId", max_length=36)] = None,
    trigger: Annotated[Trigger | None, Query(description="how the run was started")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="a run id (whole, or its first 4+ characters) or text inside one of the input values",
        ),
    ] = None,
    since: Annotated[
        UtcDateTime | None,
        Query(
            alias="from", description="at or after (ISO-8601): the start under sort=startedAt, else creation"
        ),
    ] = None,
    until: Annotated[
        UtcDateTime | None, Query(alias="to", description="before (ISO-8601), the same time as `from`")
    ] = None,
) -> RunFilters:
    """The filters the list and the export share, from the query."""
    return RunFilters(status, workflow_id, device_id, since, until, trigger, q)


Filters = Annotated[RunFilters, Depends(run_filters)]


@router.get("/runs", response_model=RunPageOut, summary="List runs, newest first unless sorted otherwise")
def list_runs(
    session: SessionDep,
    account: CurrentAccount,
    filters: Filters,
    sort: Annotated[
        RunSort,
        Query(description="createdAt, startedAt or durationMs; a leading '-' for largest first"),
    ] = DEFAULT_SORT,
    cursor: Annotated[
        str | None, Query(max_length=500, description="nextCursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """A page of the account's runs (no traces), filtered and sorted; follow `nextCursor` for more."""
    runs, next_cursor = listing.list_runs(session, account.id, filters, cursor, limit, sort)
    return {"runs": [service.summary_json(run) for run in runs], "nextCursor": next_cursor}


@router.get(
    "/runs/export",
    summary="Export runs as one JSON array with traces, or as CSV (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The runs, oldest first"}
    },
)
def export_runs(
    request: Request,
    account: CurrentAccount,
    filters: Filters,
    days: Annotated[int | None, Query(ge=1, le=3650, description="how many days back")] = None,
    sort: Annotated[RunSort, Query(description="as for GET /runs")] = export_module.EXPORT_SORT,
    format: Annotated[  # noqa: A002 - the query's name
        export_module.ExportFormat, Query(description="json (with traces) or csv (one line a run)")
    ] = export_module.ExportFormat.JSON,
) -> StreamingResponse:
    """The account's runs with the list's filters, oldest first, as a JSON array with traces or as CSV.

    How far back is capped by plan (free 30 days, pro and team 90): `days` (default the plan's
    window) and `from` must stay inside it."""
    since = export_module.export_window_start(account, days, filters)
    return export_module.export_response(
        request, account.id, filters.narrowed(since), sort, format, days or None
    )


@router.get("/stats", response_model=StatsOut, summary="Run statistics for the last N days")
def get_stats(
    session: SessionDep,
    account: CurrentAccount,
    days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> dict[str, Any]:
    """Success rate, average duration, last incident, runs per day, top workflows, runs per device."""
    return stats.compute_stats(session, account.id, days)


@router.get("/runs/{run_id}", response_model=RunOut, summary="One run with its trace")
def get_run(run_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return service.run_json(session, service.get_run(session, account.id, run_id))


@router.get("/runs/{run_id}/log", summary="A run's execution log: the engine's decisions in order")
def get_run_log(run_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """`{runId, source, entries, variables}`: the engine's log when its bridge sent one (`source`
    `engine`), else the one read from the trace and the workflow version (`trace`); `variables`
    the `var-set` entries in order (docs/workflow-format.md, "Execution log")."""
    run = service.get_run(session, account.id, run_id)
    version = session.get(WorkflowVersion, run.workflow_version_id)
    definition = version.definition if version is not None else {}
    source, entries = run_logs.log_of(session, run, definition, service.trace_of(session, run.id))
    return {
        "runId": run.id,
        "source": source,
        "entries": entries,
        "variables": run_logs.variables_of(entries),
    }


@router.post(
    "/workflows/{workflow_id}/runs",
    response_model=RunSummaryOut,
    status_code=201,
    summary="Queue a run of the published version on a device, or for any free phone with a tag",
    responses=problem_responses(
        409,
        c409="The workflow has no published version, the device is revoked, or the version names a "
        "package the denylist now denies (`errors` points at each package field)",
    ),
)
def trigger_run(
    workflow_id: str, body: TriggerRunIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """A `queued` run (trigger `api`) of the workflow's published version for `deviceId`."""
    run = service.trigger_run(
        session,
        account,
        workflow_id,
        body.device_id,
        body.inputs,
        global_denylist=request.app.state.settings.global_denylist,
        triggered_by=caller_name(request, account),
        notify=get_hub(request.app).notify,
        device_tag=body.device_tag,
        frames=body.frames,
    )
    return service.summary_json(run)


@router.post(
    "/workflows/{workflow_id}/batches",
    response_model=BatchOut,
    status_code=201,
    summary="Queue a run of the published version on each of a set of phones (ids or a tag)",
    responses=problem_responses(
        409, c409="Nothing published, a phone is revoked, no phone carries the tag, or a denied package"
    ),
)
def trigger_batch(
    workflow_id: str, body: TriggerBatchIn, request: Request, session: SessionDep, account: CurrentAccount
) -> dict[str, Any]:
    """One `queued` run per phone, all with one `batchId`; all or nothing."""
    batch_id, _runs = batches.trigger_batch(
        session,
        account,
        workflow_id,
        device_ids=body.device_ids,
        tag=body.tag,
        inputs=body.inputs,
        global_denylist=request.app.state.settings.global_denylist,
        triggered_by=caller_name(request, account),
        notify=get_hub(request.app).notify,
    )
    session.flush()
    return batches.batch_json(session, account.id, batch_id)


@router.get("/batches/{batch_id}", response_model=BatchOut, summary="A batch's runs and progress")
def get_batch(batch_id: str, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    return batches.batch_json(session, account.id, batch_id)


@router.post("/runs/{run_id}/cancel", response_model=RunSummaryOut, summary="Cancel a run")
def cancel_run(run_id: str, request: Request, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """A queued run ends `cancelled` now; a running one gets `cancelRequested` and its device stops it."""
    run = service.cancel_run(session, account.id, run_id, get_hub(request.app).notify)
    summary = service.summary_json(run)
    commit_then_wait_out(session, lambda s: run_lease_until(s, run.id))  # no step starts after this answer
    return summary


@router.post(
    "/runs/{run_id}/pause",
    response_model=RunSummaryOut,
    summary="Pause a moving run: the step in flight finishes, then it holds between steps",
    responses=problem_responses(409, c409="The run is not running (queued, waiting for an approval, ended)"),
)
def pause_run(run_id: str, request: Request, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """A `running` run becomes `paused`; its phone starts no further step until it is resumed."""
    run = pausing.pause_run(session, account.id, run_id, get_hub(request.app).notify)
    summary = service.summary_json(run)
    commit_then_wait_out(session, lambda s: run_lease_until(s, run.id))  # no step starts after this answer
    return summary


@router.post(
    "/runs/{run_id}/resume",
    response_model=RunSummaryOut,
    summary="Resume a paused run",
    responses=problem_responses(409, c409="The run is not paused"),
)
def resume_run(run_id: str, request: Request, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """A `paused` run becomes `running` again; its phone goes on with the next step."""
    return service.summary_json(pausing.resume_run(session, account.id, run_id, get_hub(request.app).notify))


@router.post(
    "/runs/{run_id}/retry",
    response_model=RunSummaryOut,
    status_code=201,
    summary="Run a finished run again",
    responses=problem_responses(
        409,
        c409="The run has not ended, its device is gone or revoked, or its version names a package the "
        "denylist now denies",
    ),
)
def retry_run(run_id: str, request: Request, session: SessionDep, account: CurrentAccount) -> dict[str, Any]:
    """A new `queued` run (trigger `retry`, `retryOf` this run) of the same version, device and inputs."""
    run = retries.retry_run(
        session,
        account.id,
        run_id,
        global_denylist=request.app.state.settings.global_denylist,
        triggered_by=caller_name(request, account),
        notify=get_hub(request.app).notify,
    )
    return service.summary_json(run)


@router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactOut], summary="A run's artifacts")
def list_artifacts(run_id: str, session: SessionDep, account: CurrentAccount) -> list[dict[str, Any]]:
    run = service.get_run(session, account.id, run_id)
    rows = session.execute(
        select(Artifact.name, Artifact.content_type, Artifact.size, Artifact.created_at)
        .where(Artifact.run_id == run.id)
        .order_by(Artifact.created_at, Artifact.name)
    )
    return [
        {"name": r.name, "contentType": r.content_type, "size": r.size, "createdAt": r.created_at}
        for r in rows
    ]


@router.get(
    "/runs/{run_id}/artifacts/{name}",
    summary="One artifact's bytes",
    response_class=Response,
    responses={
        200: {
            "content": {
                "image/png": {},
                "image/jpeg": {},
                "image/webp": {},
                "video/mp4": {},
                "text/plain": {},
            },
            "description": (
                "The artifact: an image or a video inline (a video answers a `Range` with 206), "
                "text as a text/plain attachment"
            ),
        },
        206: {"content": {"video/mp4": {}}, "description": "The byte range of a video asked for"},
        416: {"description": "The range asked for lies past the video's end"},
    },
)
def get_artifact(
    run_id: str, name: str, request: Request, session: SessionDep, account: CurrentAccount
) -> Response:
    run = service.get_run(session, account.id, run_id)
    artifact = session.scalars(
        select(Artifact).where(Artifact.run_id == run.id, Artifact.name == name)
    ).first()
    if artifact is None:
        raise NotFound(
            f"run {run_id} has no artifact named {name!r}; list them with GET /api/v1/runs/{run_id}/artifacts"
        )
    range_header = request.headers.get("range")
    return artifact_response(
        artifact.name, artifact.content_type, read_artifact(session, artifact), range_header
    )


@router.put(
    "/runs/{run_id}/live-frame",
    status_code=204,
    response_class=Response,
    summary="The phone's screen right now, while someone watches the run live (body: a JPEG)",
)
def put_live_frame(
    run_id: str,
    request: Request,
    session: SessionDep,
    device: CurrentDevice,
    data: Annotated[bytes, Body(media_type="image/jpeg")],
) -> Response:
    """Keep the newest screen of a moving run as `live.jpg` (replaced each time) and tell its watchers.

    Sent by the bridge between steps while the run page's "Live" toggle is on (the step gate says so).
    """
    limit: int = request.app.state.settings.artifact_max_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"the frame is larger than {limit} bytes; send a smaller one")
    if not data.startswith(b"\xff\xd8"):
        raise ValidationFailed(
            [FieldProblem("/body", "the body is not a JPEG image", "send the screen as JPEG")]
        )
    frames.store_live_frame(
        session, request.app.state.settings, device.id, run_id, data, get_hub(request.app).notify
    )
    return Response(status_code=204)


@router.post(
    "/runs/{run_id}/artifacts",
    status_code=201,
    response_model=ArtifactOut,
    summary="Upload an artifact of one of this device's runs (multipart: file, name)",
)
def upload_artifact(
    run_id: str,
    request: Request,
    session: SessionDep,
    device: CurrentDevice,
    file: Annotated[UploadFile, File(description="the artifact's bytes")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    meta: Annotated[
        str | None, Form(description="a frame's step and screen (JSON; server/runs/frames.py)")
    ] = None,
) -> dict[str, Any]:
    """Store a screenshot (PNG, JPEG, WebP), a screen recording (MP4) or a text file (JSON, XML,
    plain) of a run this device reported; the bytes must be what the content type says. The same
    name again is a no-op.

    A step's screen is named `frame-SEQ.jpg` and comes with `meta`; the first time it is stored, a
    `run.frame` event tells the run's watchers."""
    run = session.scalars(select(Run).where(Run.id == run_id.lower(), Run.device_id == device.id)).first()
    if run is None:
        raise NotFound(
            f"this device has no run {run_id}; report the run with runs.report before its artifacts"
        )
    limit: int = request.app.state.settings.artifact_max_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the artifact is larger than {limit} bytes; send a smaller file")
    artifact_name = check_name(name or file.filename or "")
    frame_meta = frames.parse_meta(meta, artifact_name)
    content_type = stored_type(file.content_type, data)
    now = datetime.now().astimezone()
    if artifact_name == video.VIDEO_NAME and content_type == video.VIDEO_TYPE and frame_meta is None:
        # The phone's own recording of the run: it takes the place of the video made from frames.
        if video.store_phone_video(session, request.app.state.settings, run, data):
            service.record_changes(session, run.account_id, [run.id], get_hub(request.app).notify)
        return {"name": artifact_name, "contentType": content_type, "size": len(data), "createdAt": now}
    inserted = save_artifact(
        session,
        request.app.state.settings,
        account_id=run.account_id,
        run_id=run.id,
        name=artifact_name,
        content_type=content_type,
        data=data,
        meta=frame_meta,
        created_at=now,
    )
    if frame_meta is not None and inserted:
        notify = get_hub(request.app).notify
        frames.record_frame(session, run.account_id, run.id, artifact_name, frame_meta, notify)
        video.frame_stored(session, run.id)
    return {"name": artifact_name, "contentType": content_type, "size": len(data), "createdAt": now}
