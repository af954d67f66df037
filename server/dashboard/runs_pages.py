"""The Runs page (table, filters, overview) and the run detail page, with their live fragments."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from interpreter.trace import RunStatus
from server.approvals import service as approvals
from server.artifact_store.service import read_artifact
from server.dashboard.builder_assets import OVERLAY_ENTRY, BuilderAssets, BuilderNotBuilt, builder_assets
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.session import CheckedUser, DashboardUser, User
from server.db import SessionDep, utcnow
from server.devices.models import Device
from server.errors import FieldProblem, NotFound, ValidationFailed
from server.runs.artifacts import artifact_response
from server.runs.events import RUN_STEP, get_hub
from server.runs.export import ExportFormat, export_response, export_window_start
from server.runs.frames import LIVE_FRAME, frames_of
from server.runs.lease import commit_then_wait_out, run_lease_until
from server.runs.listing import RunFilters, RunSort, list_runs
from server.runs.models import Artifact, Run, RunEvent
from server.runs.run_logs import log_of, variables_of
from server.runs.schemas import Trigger
from server.runs.service import cancel_run, get_run, record_changes, retried_by, trace_of
from server.runs.stats import compute_stats
from server.runs.video import VIDEO_NAME, assemble_soon, is_phone_video
from server.runs.waiting import why_waiting
from server.schemas import in_range_utc
from server.workflows.models import Workflow, WorkflowVersion

router = dashboard_router()

PAGE_SIZE = 25
PAGE_SORT = RunSort.STARTED_DESC
TRIGGERS: tuple[str, ...] = get_args(Trigger)
SORT_LABELS = {
    RunSort.STARTED_DESC.value: "newest first",
    RunSort.STARTED.value: "oldest first",
    RunSort.DURATION_DESC.value: "longest first",
    RunSort.DURATION.value: "shortest first",
}
CHART_DAYS = 14
STATS_DAYS = 14


@dataclass(frozen=True, slots=True)
class PageFilters:
    """The runs table's filters and order as the page's query names them (as the API does, except
    that `from`/`to` are days, `YYYY-MM-DD`, both included)."""

    status: str | None = None
    workflow_id: str | None = None
    device_id: str | None = None
    trigger: str | None = None
    q: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    sort: str | None = None

    @property
    def run_sort(self) -> RunSort:
        """The order (the page's default: newest start first)."""
        return RunSort(self.sort) if self.sort in set(RunSort) else PAGE_SORT

    def to_service(self) -> RunFilters:
        """The runs service's filters (an unknown status or trigger means any); 422 for a bad day."""
        status = RunStatus(self.status) if self.status in set(RunStatus) else None
        trigger = self.trigger if self.trigger in TRIGGERS else None
        since = _day(self.date_from, "from")
        until = _day(self.date_to, "to")
        return RunFilters(
            status=status,
            workflow_id=self.workflow_id or None,
            device_id=self.device_id or None,
            since=since,
            until=None if until is None else until + timedelta(days=1),
            trigger=trigger,
            search=self.q or None,
        )

    @property
    def filtered(self) -> bool:
        return any(
            (
                self.status,
                self.workflow_id,
                self.device_id,
                self.trigger,
                self.q,
                self.date_from,
                self.date_to,
            )
        )

    def query(self, cursor: str | None = None, **changes: str | None) -> str:
        """The page's query string for these filters (and a cursor), with `changes` applied."""
        pairs = {
            "status": self.status,
            "workflowId": self.workflow_id,
            "deviceId": self.device_id,
            "trigger": self.trigger,
            "q": self.q,
            "from": self.date_from,
            "to": self.date_to,
            "sort": self.sort,
            "cursor": cursor,
            **changes,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    def sort_query(self, key: str) -> str:
        """The query that sorts by `key` (largest first, or smallest first when it already is)."""
        current = self.run_sort
        wanted = f"-{key}" if not (current.key_name == key and current.descending) else key
        return self.query(sort=wanted)


def _day(text: str | None, name: str) -> datetime | None:
    """Midnight UTC of a `YYYY-MM-DD` day; 422 (an error page) when it is not one."""
    if not text:
        return None
    try:
        return in_range_utc(datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC))
    except ValueError:
        raise ValidationFailed(
            [FieldProblem(f"query:{name}", f"'{text}' is not a day", "pick a day like 2026-11-23")],
            message=f"'{text}' is not a day: pick one like 2026-11-23",
        ) from None


def _names(db: Session, account_id: str) -> tuple[dict[str, str], dict[str, str]]:
    workflow_rows = db.execute(
        select(Workflow.id, Workflow.name).where(Workflow.account_id == account_id).order_by(Workflow.name)
    ).all()
    device_rows = db.execute(
        select(Device.id, Device.name).where(Device.account_id == account_id).order_by(Device.name)
    ).all()
    return {row.id: row.name for row in workflow_rows}, {row.id: row.name for row in device_rows}


def _table_context(
    db: Session, user: DashboardUser, filters: PageFilters, cursor: str | None
) -> dict[str, Any]:
    runs, next_cursor = list_runs(
        db, user.account.id, filters.to_service(), cursor, PAGE_SIZE, filters.run_sort
    )
    workflow_names, device_names = _names(db, user.account.id)
    return {
        "runs": runs,
        "next_cursor": next_cursor,
        "next_query": filters.query(next_cursor),
        "filters": filters,
        "sort": filters.run_sort,
        "filtered": filters.filtered,
        "workflow_names": workflow_names,
        "device_names": device_names,
    }


def bar_chart(per_day: list[dict[str, Any]], days: int = CHART_DAYS) -> dict[str, Any]:
    """An SVG bar per day (success / failed+timeout / other, stacked) for the last `days` days."""
    counts = {row["day"]: row["counts"] for row in per_day}
    today = utcnow().date()
    width, height, gap = 420, 64, 6
    bar_w = (width - gap * (days - 1)) / days
    series = []
    for offset in range(days - 1, -1, -1):
        day: date = today - timedelta(days=offset)
        c = counts.get(day.isoformat(), {})
        ok = c.get("success", 0)
        bad = c.get("failed", 0) + c.get("timeout", 0)
        series.append((day, ok, bad, sum(c.values()) - ok - bad))
    peak = max((ok + bad + other for _, ok, bad, other in series), default=0) or 1
    bars = []
    for index, (day, ok, bad, other) in enumerate(series):
        scale = height / peak
        ok_h, bad_h, other_h = ok * scale, bad * scale, other * scale
        bars.append(
            {
                "x": round(index * (bar_w + gap), 2),
                "day": day.isoformat(),
                "label": day.strftime("%d"),
                "total": ok + bad + other,
                "ok": ok,
                "bad": bad,
                "ok_h": round(ok_h, 2),
                "ok_y": round(height - ok_h, 2),
                "bad_h": round(bad_h, 2),
                "bad_y": round(height - ok_h - bad_h, 2),
                "other_h": round(other_h, 2),
                "other_y": round(height - ok_h - bad_h - other_h, 2),
            }
        )
    return {"width": width, "height": height, "bar_w": round(bar_w, 2), "bars": bars}


def _stats_context(db: Session, user: DashboardUser) -> dict[str, Any]:
    raw = compute_stats(db, user.account.id, max(STATS_DAYS, CHART_DAYS))
    rate = raw["successRate"]
    incident = raw["lastIncident"]
    stats = {
        "success_rate_text": "—" if rate is None else f"{rate * 100:.0f}%",
        "average_duration_ms": None if raw["averageDurationMs"] is None else int(raw["averageDurationMs"]),
        "last_incident": None
        if incident is None
        else {
            "id": incident["id"],
            "status": incident["status"],
            "at": incident["endedAt"] or incident["createdAt"],
            "message": incident["errorMessage"],
        },
    }
    return {"stats": stats, "stats_days": STATS_DAYS, "chart": bar_chart(raw["perDay"])}


def latest_event_id(db: Session, account_id: str) -> int:
    """The id of the account's newest `run.updated` event: live.js streams from after it."""
    newest = db.execute(
        select(func.coalesce(func.max(RunEvent.id), 0)).where(RunEvent.account_id == account_id)
    ).scalar_one()
    return int(newest)


def _filters(
    status: str | None = None,
    workflowId: str | None = None,  # noqa: N803 - the API's query names
    deviceId: str | None = None,  # noqa: N803
    trigger: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    sort: str | None = None,
) -> PageFilters:
    """The page's filters from its query (blank fields mean any)."""
    return PageFilters(
        status=status or None,
        workflow_id=workflowId or None,
        device_id=deviceId or None,
        trigger=trigger or None,
        q=(q or "").strip() or None,
        date_from=date_from or None,
        date_to=date_to or None,
        sort=sort or None,
    )


Filters = Annotated[PageFilters, Depends(_filters)]


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request, db: SessionDep, user: User, filters: Filters, cursor: str | None = None
) -> Response:
    """The overview and the runs table, newest start first (or as sorted), filtered and paged."""
    # Read before the table: an event committed in between is replayed, never lost.
    events_after = latest_event_id(db, user.account.id)
    return page(
        request,
        "runs.html",
        user,
        events_after=events_after,
        statuses=[s.value for s in RunStatus],
        triggers=TRIGGERS,
        sorts=SORT_LABELS,
        query=filters.query(),
        cursor=cursor,
        **_table_context(db, user, filters, cursor),
        **_stats_context(db, user),
        pending_approvals=approvals.count_pending(db, user.account.id),
    )


@router.get("/runs/_table", response_class=HTMLResponse)
def runs_table_fragment(request: Request, db: SessionDep, user: User, filters: Filters) -> Response:
    """The runs table alone (first page), which live.js swaps in after an event."""
    return page(request, "_runs_table.html", user, **_table_context(db, user, filters, None))


@router.get("/runs/_stats", response_class=HTMLResponse)
def runs_stats_fragment(request: Request, db: SessionDep, user: User) -> Response:
    """The overview alone, which live.js swaps in after an event."""
    return page(request, "_stats.html", user, **_stats_context(db, user))


@router.get("/runs/_approvals", response_class=HTMLResponse)
def approvals_fragment(request: Request, db: SessionDep, user: User) -> Response:
    """How many approvals wait for an answer, which live.js refreshes after an event."""
    return page(
        request, "_approvals_count.html", user, pending_approvals=approvals.count_pending(db, user.account.id)
    )


@router.get("/runs/export")
def export_runs(
    request: Request,
    user: User,
    filters: Filters,
    format: str = "json",  # noqa: A002 - the query's name
) -> Response:
    """The runs the page shows (its filters and order), as JSON with traces or as CSV, within the
    plan's export window."""
    if format not in set(ExportFormat):
        raise ValidationFailed([], f"the export format must be json or csv, not {format!r}")
    service_filters = filters.to_service()
    since = export_window_start(user.account, None, service_filters)
    return export_response(
        request,
        user.account.id,
        service_filters.narrowed(since),
        filters.run_sort,
        ExportFormat(format),
        None,
    )


def _run_context(db: Session, user: DashboardUser, run: Run) -> dict[str, Any]:
    workflow = db.get(Workflow, run.workflow_id)
    version = db.get(WorkflowVersion, run.workflow_version_id)
    trace = trace_of(db, run.id)
    device = db.get(Device, run.device_id) if run.device_id else None
    rows = db.execute(
        select(Artifact.name, Artifact.content_type, Artifact.meta)
        .where(Artifact.run_id == run.id)
        .order_by(Artifact.name)
    ).all()
    frames = frames_of(db, run.id)
    log_source, exec_log = log_of(db, run, version.definition if version else {}, trace)
    frame_names = {frame["name"] for frame in frames} | {LIVE_FRAME, VIDEO_NAME}
    by_step, others = split_artifacts(
        [(row.name, row.content_type) for row in rows if row.name not in frame_names]
    )
    return {
        "frames": frames,
        "video": any(row.name == VIDEO_NAME for row in rows),
        "phone_video": any(row.name == VIDEO_NAME and is_phone_video(row.meta) for row in rows),
        "step_in_flight": _step_in_flight(db, run),
        "live": run.live_until is not None and run.live_until > utcnow(),
        "run": run,
        "retried_by": retried_by(db, run.id),
        "waiting": why_waiting(db, run),
        "trace": trace,
        "exec_log": exec_log,
        "log_source": log_source,
        "log_variables": variables_of(exec_log),
        "inputs_json": json.dumps(run.inputs or {}, indent=2, ensure_ascii=False),
        "workflow_name": workflow.name if workflow else run.workflow_id,
        "version_number": version.number if version else "?",
        "device_name": device.name if device else "no device",
        "step_artifacts": by_step,
        "step_overlays": step_overlays(by_step),
        "artifacts": others,
        "approvals": [
            (approval, approvals.may_answer(approval, user.account))
            for approval in approvals.pending_for_runs(db, user.account.id, [run.id])
        ],
    }


def _step_in_flight(db: Session, run: Run) -> dict[str, Any] | None:
    """The step the phone said it is starting (its latest `run.step` event), while the run moves and
    that step has not ended yet."""
    if run.status not in ("running", "waiting_for_approval", "paused"):
        return None
    payload: dict[str, Any] | None = db.scalars(
        select(RunEvent.payload)
        .where(RunEvent.account_id == run.account_id, RunEvent.run_id == run.id, RunEvent.event == RUN_STEP)
        .order_by(RunEvent.id.desc())
        .limit(1)
    ).first()
    if payload is None or int(payload.get("seq", 0)) <= run.trace_len:
        return None
    return payload


# The bridge names the failure context of step SEQ `failure-SEQ-NODE.png` and `...-hierarchy.xml`.
FAILURE_ARTIFACT = re.compile(r"^failure-(\d+)-")


def split_artifacts(
    artifacts: list[tuple[str, str]],
) -> tuple[dict[int, list[tuple[str, str]]], list[tuple[str, str]]]:
    """(name, content type) pairs split into each failed step's context (by seq) and the rest."""
    by_step: dict[int, list[tuple[str, str]]] = {}
    others = []
    for name, content_type in artifacts:
        match = FAILURE_ARTIFACT.match(name)
        if match:
            by_step.setdefault(int(match.group(1)), []).append((name, content_type))
        else:
            others.append((name, content_type))
    for context in by_step.values():
        context.sort(key=lambda item: (not item[1].startswith("image/"), item[0]))  # the screen first
    return by_step, others


def step_overlays(by_step: dict[int, list[tuple[str, str]]]) -> dict[int, tuple[str, str]]:
    """The failed steps that have both a screenshot and a window hierarchy: (image, hierarchy) names."""
    found: dict[int, tuple[str, str]] = {}
    for seq, context in by_step.items():
        image = next((name for name, kind in context if kind.startswith("image/")), None)
        dump = next((name for name, _kind in context if name.endswith("hierarchy.xml")), None)
        if image and dump:
            found[seq] = (image, dump)
    return found


def _account_run(db: Session, user: DashboardUser, run_id: str) -> Run:
    # get_run answers NotFound for another account's run too: never a 403 that leaks existence.
    return get_run(db, user.account.id, run_id)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, db: SessionDep, user: User) -> Response:
    """One run: its banner, inputs, summary and step timeline, live while it moves."""
    events_after = latest_event_id(db, user.account.id)
    run = _account_run(db, user, run_id)
    context = _run_context(db, user, run)
    if context["frames"] and not context["video"] and RunStatus(run.status).terminal:
        assemble_soon(request.app, [run.id])  # its video was never made (the server stopped first)
    return page(request, "run.html", user, events_after=events_after, overlay=_overlay_assets(), **context)


def _overlay_assets() -> BuilderAssets | None:
    """The screen overlay's files; None when the builder is not built (the page then links the XML)."""
    try:
        return builder_assets(entry=OVERLAY_ENTRY)
    except BuilderNotBuilt:
        return None


@router.get("/runs/{run_id}/_body", response_class=HTMLResponse)
def run_body_fragment(request: Request, run_id: str, db: SessionDep, user: User) -> Response:
    """The run page's body alone, which live.js swaps in after an event of this run."""
    run = _account_run(db, user, run_id)
    return page(request, "_run_body.html", user, **_run_context(db, user, run))


@router.get("/runs/{run_id}/artifacts/{name}")
def run_artifact(request: Request, run_id: str, name: str, db: SessionDep, user: User) -> Response:
    """One artifact of one of the account's runs (a failure screenshot, a window hierarchy)."""
    run = _account_run(db, user, run_id)
    artifact = db.scalars(select(Artifact).where(Artifact.run_id == run.id, Artifact.name == name)).first()
    if artifact is None:
        raise NotFound(f"run {run_id} has no artifact named {name!r}")
    ranged = request.headers.get("range")
    return artifact_response(artifact.name, artifact.content_type, read_artifact(db, artifact), ranged)


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str, db: SessionDep, user: CheckedUser) -> Response:
    """Cancel a run: a queued one ends at once, a running one is stopped by its phone."""
    run = cancel_run(db, user.account.id, run_id, get_hub(request.app).notify)
    commit_then_wait_out(db, lambda s: run_lease_until(s, run.id))  # no step starts after this answer
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


# How long a "Live: on" lasts without being asked again (the phone streams only while someone looks).
LIVE_VIEW_S = 300


@router.post("/runs/{run_id}/live")
def live_view(run_id: str, db: SessionDep, user: CheckedUser, on: Annotated[str, Form()] = "1") -> Response:
    """Watch a moving run live: its phone sends frames between steps too, for the next few minutes."""
    run = _account_run(db, user, run_id)
    run.live_until = utcnow() + timedelta(seconds=LIVE_VIEW_S) if on == "1" else None
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/approval")
def answer_approval(
    request: Request,
    run_id: str,
    db: SessionDep,
    user: CheckedUser,
    approval_id: Annotated[str, Form()] = "",
    decision: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject the run's pending approval (as the signed-in account)."""
    run = _account_run(db, user, run_id)
    approval = approvals.get_approval(db, user.account.id, approval_id)
    if approval.run_id != run.id:
        raise NotFound(f"run {run_id} has no approval {approval_id}")
    if decision not in ("approve", "reject"):
        raise ValidationFailed([], f"the decision must be approve or reject, not {decision!r}")
    approvals.decide(
        db,
        user.account,
        approval.id,
        approve=decision == "approve",
        note=note.strip() or None,
        via="dashboard",
    )
    record_changes(db, user.account.id, [run.id], get_hub(request.app).notify)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
