"""`GET /api/v1/stats`: what the dashboard's overview and Analytics page show.

The period is the last N calendar days (UTC), today included. Ended runs are read from the daily
rollup (`rollup.py`: a row per day, workflow, device and final status, however many runs), the
unfinished ones live through the partial index of active runs, and the failing steps from the
failed steps of ended runs. So the cost follows the number of workflows, devices and days, not
the number of runs (bench/list_runs.py measures it at a million runs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from interpreter.trace import TERMINAL_STATUSES, RunStatus
from server.db import utcnow
from server.devices.models import Device
from server.runs.models import Run, RunDailyStat, RunStepFailure, active_run
from server.runs.rollup import DEVICE, WORKFLOW
from server.runs.service import summary_json
from server.runs.sql import day_of, utc_ms
from server.workflows.models import Workflow

TOP_WORKFLOWS = 10
TOP_FAILING_STEPS = 10
INCIDENT_STATUSES = (RunStatus.FAILED.value, RunStatus.TIMEOUT.value)
FAILED_STATUSES = {RunStatus.FAILED.value, RunStatus.TIMEOUT.value}
DAY_MS = 86_400_000


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _average(total: int, count: int) -> float | None:
    return None if count == 0 else round(total / count, 1)


@dataclass
class _Figures:
    """Counts of one day, workflow or device."""

    by_status: Counter[str] = field(default_factory=Counter)
    timed: int = 0
    duration_sum: int = 0

    def add(self, status: str, runs: int, timed: int = 0, duration_sum: int = 0) -> None:
        self.by_status[status] += runs
        self.timed += timed
        self.duration_sum += duration_sum

    @property
    def runs(self) -> int:
        return sum(self.by_status.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in _TERMINAL)

    @property
    def successes(self) -> int:
        return self.by_status[RunStatus.SUCCESS.value]

    @property
    def failures(self) -> int:
        return sum(self.by_status[status] for status in FAILED_STATUSES)


_TERMINAL = {status.value for status in TERMINAL_STATUSES}


def period_start(days: int, today: date | None = None) -> date:
    """The first day of a period of `days` calendar days ending today (UTC)."""
    return (today or utcnow().date()) - timedelta(days=days - 1)


def compute_stats(session: Session, account_id: str, days: int) -> dict[str, Any]:
    """The account's run statistics over the last `days` calendar days (runs by creation day)."""
    first_day = period_start(days)
    since = datetime.combine(first_day, time(0), tzinfo=UTC)
    # Summed in the database, one grouping at a time: the rollup has a row per day, status and
    # workflow (and per device), thousands over 90 days; the answer a few dozen.
    per_day = _ended(session, account_id, first_day, WORKFLOW, RunDailyStat.day)
    per_workflow = _ended(session, account_id, first_day, WORKFLOW, RunDailyStat.key)
    per_device = _ended(session, account_id, first_day, DEVICE, RunDailyStat.key)
    created_day = day_of(session, Run.created_at)
    unfinished = session.execute(
        select(created_day, Run.workflow_id, Run.device_id, Run.status, func.count())
        .where(active_run(), Run.account_id == account_id, Run.created_at >= since)
        .group_by(created_day, Run.workflow_id, Run.device_id, Run.status)
    )
    for day_value, workflow_id, device_id, status, runs in unfinished:
        for by_key, key in (
            (per_day, str(day_value)),
            (per_workflow, workflow_id),
            (per_device, device_id or ""),
        ):
            by_key.setdefault(key, _Figures()).add(status, int(runs))
    total = _Figures()
    for figures in per_day.values():
        for status, runs in figures.by_status.items():
            total.add(status, runs)
        total.timed += figures.timed
        total.duration_sum += figures.duration_sum

    incident = session.scalars(
        select(Run)
        .where(Run.account_id == account_id, Run.status.in_(INCIDENT_STATUSES))
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    ).first()
    top = sorted(per_workflow.items(), key=lambda item: (-item[1].runs, item[0]))[:TOP_WORKFLOWS]
    failing = _failing_steps(session, account_id, since)
    workflow_names = _names(
        session, Workflow, {workflow_id for workflow_id, _ in top} | {f["workflowId"] for f in failing}
    )
    device_names = _names(session, Device, {device_id for device_id in per_device if device_id})
    period_ms = days * DAY_MS
    return {
        "days": days,
        "from": first_day.isoformat(),
        "to": (first_day + timedelta(days=days - 1)).isoformat(),
        "totalRuns": total.runs,
        "finishedRuns": total.finished,
        "successRate": _rate(total.successes, total.finished),
        "averageDurationMs": _average(total.duration_sum, total.timed),
        "lastIncident": None if incident is None else summary_json(incident),
        "perDay": [
            {
                "day": day_key,
                "counts": dict(figures.by_status),
                "successRate": _rate(figures.successes, figures.finished),
                "averageDurationMs": _average(figures.duration_sum, figures.timed),
            }
            for day_key, figures in sorted(per_day.items())
        ],
        "topWorkflows": [
            {
                "workflowId": workflow_id,
                "name": workflow_names.get(workflow_id),
                "runs": figures.runs,
                "successes": figures.successes,
                "failures": figures.failures,
                "successRate": _rate(figures.successes, figures.finished),
                "averageDurationMs": _average(figures.duration_sum, figures.timed),
            }
            for workflow_id, figures in top
        ],
        "perDevice": [
            {
                "deviceId": device_id or None,
                "name": device_names.get(device_id),
                "runs": figures.runs,
                "busyMs": figures.duration_sum,
                "utilisation": round(figures.duration_sum / period_ms, 4),
            }
            for device_id, figures in sorted(per_device.items(), key=lambda item: (-item[1].runs, item[0]))
        ],
        "failingSteps": [{**f, "workflowName": workflow_names.get(f["workflowId"])} for f in failing],
    }


def _ended(
    session: Session, account_id: str, first_day: date, dimension: str, key: Any
) -> dict[str, _Figures]:
    """The period's ended runs from the rollup, summed by `key` (the day, or the dimension's key)."""
    figures: dict[str, _Figures] = {}
    rows = session.execute(
        select(
            key,
            RunDailyStat.status,
            func.sum(RunDailyStat.runs),
            func.sum(RunDailyStat.timed),
            # As a float: a 64-bit integer sum could overflow (SQLite then fails the query).
            func.sum(cast(RunDailyStat.duration_sum, Float)),
        )
        .where(
            RunDailyStat.account_id == account_id,
            RunDailyStat.dimension == dimension,
            RunDailyStat.day >= first_day.isoformat(),
        )
        .group_by(key, RunDailyStat.status)
    )
    for value, status, runs, timed, duration_sum in rows:
        figures.setdefault(str(value), _Figures()).add(status, int(runs), int(timed), int(duration_sum))
    return figures


def _failing_steps(session: Session, account_id: str, since: datetime) -> list[dict[str, Any]]:
    """The steps that failed most in the period's ended runs, with the latest failure's words."""
    rows = session.execute(
        select(
            RunStepFailure.workflow_id,
            RunStepFailure.node_id,
            RunStepFailure.kind,
            func.count(),
            func.max(RunStepFailure.at),
        )
        .where(RunStepFailure.account_id == account_id, RunStepFailure.at >= since)
        .group_by(RunStepFailure.workflow_id, RunStepFailure.node_id, RunStepFailure.kind)
        .order_by(func.count().desc(), RunStepFailure.workflow_id, RunStepFailure.node_id)
        .limit(TOP_FAILING_STEPS)
    ).all()
    steps = []
    for workflow_id, node_id, kind, failures, _last in rows:
        latest = session.execute(
            select(RunStepFailure.message, RunStepFailure.at)
            .where(
                RunStepFailure.account_id == account_id,
                RunStepFailure.workflow_id == workflow_id,
                RunStepFailure.node_id == node_id,
                RunStepFailure.at >= since,
            )
            .order_by(RunStepFailure.at.desc())
            .limit(1)
        ).one()
        steps.append(
            {
                "workflowId": workflow_id,
                "nodeId": node_id,
                "kind": kind,
                "failures": int(failures),
                "lastAt": utc_ms(latest.at),
                "lastMessage": latest.message or None,
            }
        )
    return steps


def _names(session: Session, model: type[Workflow] | type[Device], ids: set[str]) -> dict[str, str]:
    """The names of the given workflows or devices, by id."""
    if not ids:
        return {}
    rows = session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    return {row.id: row.name for row in rows}
