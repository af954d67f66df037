"""`GET /api/v1/runs/export`: the account's runs, filtered as the list filters them, streamed as
one JSON array (with traces and execution logs) or as CSV (one line a run, no trace).

Memory stays flat however many runs there are: runs are read a page at a time through the
list's own keyset query (`listing.list_runs`, oldest first by default), each page in its own
short transaction, and written out as they are read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.accounts.models import Account
from server.db import utcnow
from server.devices.models import Device
from server.errors import FieldProblem, ValidationFailed
from server.runs.listing import RunFilters, RunSort, list_runs
from server.runs.models import Run, TraceEventRow
from server.runs.run_logs import LogSource, engine_logs, log_of
from server.runs.service import summary_json
from server.runs.sql import utc_ms
from server.workflows.models import Workflow, WorkflowVersion

BATCH_SIZE = 500
EXPORT_SORT = RunSort.CREATED


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


CSV_COLUMNS = (
    "id",
    "workflowId",
    "workflowName",
    "workflowVersionId",
    "deviceId",
    "deviceName",
    "status",
    "trigger",
    "triggeredBy",
    "createdAt",
    "startedAt",
    "endedAt",
    "durationMs",
    "nSteps",
    "nFailed",
    "nRetries",
    "errorMessage",
    "inputs",
)


def _traces(session: Session, runs: list[Run]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = {run.id: [] for run in runs}
    events = session.execute(
        select(TraceEventRow.run_id, TraceEventRow.event)
        .where(TraceEventRow.run_id.in_(list(traces)))
        .order_by(TraceEventRow.run_id, TraceEventRow.seq)
    )
    for run_id, event in events:
        traces[run_id].append(event)
    return traces


def _logs(
    session: Session, runs: list[Run], traces: dict[str, list[dict[str, Any]]]
) -> dict[str, tuple[LogSource, list[dict[str, Any]]]]:
    """Each run's execution log: the engine's when stored, else read from its trace and version."""
    stored = engine_logs(session, [run.id for run in runs])
    version_ids = {run.workflow_version_id for run in runs if run.id not in stored}
    definitions: dict[str, Any] = {}
    if version_ids:
        rows = session.execute(
            select(WorkflowVersion.id, WorkflowVersion.definition).where(WorkflowVersion.id.in_(version_ids))
        )
        definitions = {row.id: row.definition for row in rows}
    return {
        run.id: log_of(session, run, definitions.get(run.workflow_version_id) or {}, traces[run.id], stored)
        for run in runs
    }


def _pages(
    session_factory: sessionmaker[Session],
    account_id: str,
    filters: RunFilters,
    sort: RunSort,
    *,
    with_traces: bool,
) -> Iterator[list[dict[str, Any]]]:
    """The filtered runs as JSON objects, a page at a time, each page read in its own transaction."""
    cursor: str | None = None
    while True:
        with session_factory() as session:
            runs, cursor = list_runs(session, account_id, filters, cursor, BATCH_SIZE, sort)
            if with_traces and runs:
                traces = _traces(session, runs)
                logs = _logs(session, runs, traces)
                items = [
                    {
                        **summary_json(run),
                        "trace": traces[run.id],
                        "logSource": logs[run.id][0],
                        "log": logs[run.id][1],
                    }
                    for run in runs
                ]
            else:
                items = [summary_json(run) for run in runs]
            session.rollback()  # read only: end the transaction (and its lock on SQLite) now
        if items:
            yield items
        if cursor is None:
            return


def export_chunks(
    session_factory: sessionmaker[Session],
    account_id: str,
    filters: RunFilters,
    sort: RunSort = EXPORT_SORT,
    fmt: ExportFormat = ExportFormat.JSON,
) -> Iterator[bytes]:
    """The export, piece by piece: a JSON array (`[`, each run with its trace, `]`) or CSV."""
    if fmt is ExportFormat.CSV:
        yield from _csv_chunks(session_factory, account_id, filters, sort)
        return
    yield b"["
    first = True
    for items in _pages(session_factory, account_id, filters, sort, with_traces=True):
        parts = []
        for item in items:
            parts.append(("" if first else ",") + json.dumps(item, separators=(",", ":")))
            first = False
        yield "".join(parts).encode()
    yield b"]"


def _names(session_factory: sessionmaker[Session], account_id: str) -> tuple[dict[str, str], dict[str, str]]:
    with session_factory() as session:
        workflows = {
            row.id: row.name
            for row in session.execute(
                select(Workflow.id, Workflow.name).where(Workflow.account_id == account_id)
            )
        }
        devices = {
            row.id: row.name
            for row in session.execute(select(Device.id, Device.name).where(Device.account_id == account_id))
        }
        session.rollback()
    return workflows, devices


# A spreadsheet runs a cell that starts with one of these as a formula; inputs can come from
# outside (incoming webhooks), so such text gets a leading apostrophe (OWASP's CSV injection advice).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_chunks(
    session_factory: sessionmaker[Session], account_id: str, filters: RunFilters, sort: RunSort
) -> Iterator[bytes]:
    workflow_names, device_names = _names(session_factory, account_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    for items in _pages(session_factory, account_id, filters, sort, with_traces=False):
        buffer.seek(0)
        buffer.truncate()
        for item in items:
            row = {
                **item,
                "workflowName": workflow_names.get(item["workflowId"], ""),
                "deviceName": device_names.get(item["deviceId"] or "", ""),
                "inputs": json.dumps(item["inputs"], ensure_ascii=False, separators=(",", ":")),
            }
            writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
        yield buffer.getvalue().encode()


def export_window_start(account: Account, days: int | None, filters: RunFilters) -> datetime:
    """The oldest moment this account may export (`days` back, within the plan); 422 beyond the plan."""
    window = account.export_window_days
    if days is not None and days > window:
        raise ValidationFailed(
            [
                FieldProblem(
                    "query:days",
                    f"the {account.plan} plan exports at most {window} days; {days} asked",
                    f"ask for days={window} or fewer",
                )
            ]
        )
    now = utcnow()
    oldest = now - timedelta(days=window)
    if filters.since is not None and filters.since < oldest - timedelta(minutes=1):
        raise ValidationFailed(
            [
                FieldProblem(
                    "query:from",
                    f"the {account.plan} plan exports the last {window} days; from={utc_ms(filters.since)} "
                    "is older",
                    f"give a from after {utc_ms(oldest)}",
                )
            ]
        )
    return now - timedelta(days=days or window)


def export_response(
    request: Request,
    account_id: str,
    filters: RunFilters,
    sort: RunSort,
    fmt: ExportFormat,
    days: int | None,
) -> StreamingResponse:
    """The streamed export (the API's and the dashboard's), named for a download."""
    chunks = export_chunks(request.app.state.session_factory, account_id, filters, sort, fmt)
    media_type = "text/csv; charset=utf-8" if fmt is ExportFormat.CSV else "application/json"
    name = f"phoneflow-runs-{days}d" if days else f"phoneflow-runs-{utcnow().strftime('%Y%m%d-%H%M%S')}"
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )
