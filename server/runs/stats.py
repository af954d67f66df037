"""`GET /api/v1/stats`: what the dashboard's overview shows, computed in SQL over the index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from interpreter.trace import TERMINAL_STATUSES, RunStatus
from server.db import utcnow
from server.devices.models import Device
from server.runs.models import Run
from server.runs.service import summary_json
from server.runs.sql import day_of
from server.workflows.models import Workflow

TOP_WORKFLOWS = 10
INCIDENT_STATUSES = (RunStatus.FAILED.value, RunStatus.TIMEOUT.value)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def compute_stats(session: Session, account_id: str, days: int) -> dict[str, Any]:
    """The account's run statistics over the last `days` days (runs by creation time)."""
    since = utcnow() - timedelta(days=days)
    in_period = (Run.account_id == account_id, Run.created_at >= since)
    terminal = [status.value for status in TERMINAL_STATUSES]

    by_status = dict(
        session.execute(select(Run.status, func.count()).where(*in_period).group_by(Run.status)).all()
    )
    total = sum(by_status.values())
    finished = sum(count for status, count in by_status.items() if status in terminal)
    successes = by_status.get(RunStatus.SUCCESS.value, 0)
    average = session.execute(
        select(func.avg(Run.duration_ms)).where(
            *in_period, Run.status.in_(terminal), Run.duration_ms.is_not(None)
        )
    ).scalar_one()

    incident = session.scalars(
        select(Run)
        .where(Run.account_id == account_id, Run.status.in_(INCIDENT_STATUSES))
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    ).first()

    day = day_of(session, Run.created_at)
    per_day: dict[str, dict[str, int]] = {}
    for day_value, status, count in session.execute(
        select(day, Run.status, func.count()).where(*in_period).group_by(day, Run.status).order_by(day)
    ):
        per_day.setdefault(str(day_value), {})[status] = count

    success_count = func.sum(case((Run.status == RunStatus.SUCCESS.value, 1), else_=0))
    finished_count = func.sum(case((Run.status.in_(terminal), 1), else_=0))
    workflows = session.execute(
        select(Run.workflow_id, Workflow.name, func.count(), success_count, finished_count)
        .join(Workflow, Workflow.id == Run.workflow_id)
        .where(*in_period)
        .group_by(Run.workflow_id, Workflow.name)
        .order_by(func.count().desc(), Run.workflow_id)
        .limit(TOP_WORKFLOWS)
    ).all()

    devices = session.execute(
        select(Run.device_id, Device.name, func.count())
        .outerjoin(Device, Device.id == Run.device_id)
        .where(*in_period)
        .group_by(Run.device_id, Device.name)
        .order_by(func.count().desc(), Run.device_id)
    ).all()

    return {
        "days": days,
        "totalRuns": total,
        "finishedRuns": finished,
        "successRate": _rate(successes, finished),
        "averageDurationMs": None if average is None else round(float(average), 1),
        "lastIncident": None if incident is None else summary_json(incident),
        "perDay": [{"day": d, "counts": counts} for d, counts in sorted(per_day.items())],
        "topWorkflows": [
            {
                "workflowId": workflow_id,
                "name": name,
                "runs": runs,
                "successes": int(ok or 0),
                "successRate": _rate(int(ok or 0), int(done or 0)),
            }
            for workflow_id, name, runs, ok, done in workflows
        ],
        "perDevice": [
            {"deviceId": device_id, "name": name, "runs": runs} for device_id, name, runs in devices
        ],
    }
