"""Batches: one workflow triggered on a set of phones at once (named by ids, or every phone with a
tag), one run per phone sharing a `batchId`; and how far a batch got.

A batch has no table of its own: it is its runs (`runs.batch_id`, indexed). Its progress reaches
dashboards like every run's: each run's `run.updated` carries its `batchId`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from interpreter.denylist import Denylist
from interpreter.trace import RunStatus
from server.accounts.models import Account
from server.db import new_id
from server.devices.service import devices_with_tag
from server.errors import Conflict, NotFound
from server.runs.models import Run
from server.runs.service import summary_json, trigger_run


def trigger_batch(
    session: Session,
    account: Account,
    workflow_id: str,
    *,
    device_ids: list[str] | None,
    tag: str | None,
    inputs: dict[str, Any],
    global_denylist: Denylist,
    triggered_by: str | None,
    notify: Callable[[], object] | None = None,
) -> tuple[str, list[Run]]:
    """Queue one run of the published version per phone (`device_ids`, or every live device with
    `tag`), all with one new batch id. All or nothing: a phone that cannot take the run refuses the
    whole batch (404/409 naming it)."""
    if device_ids is None:
        targets = [device.id for device in devices_with_tag(session, account.id, tag or "")]
        if not targets:
            raise Conflict(
                f"no live device of this account carries the tag {tag!r}; tag phones with "
                "PUT /api/v1/devices/{id}/tags"
            )
    else:
        targets = list(dict.fromkeys(device_ids))
    batch_id = new_id()
    runs = [
        trigger_run(
            session,
            account,
            workflow_id,
            device_id,
            inputs,
            global_denylist=global_denylist,
            triggered_by=triggered_by,
            notify=notify,
            batch_id=batch_id,
        )
        for device_id in targets
    ]
    return batch_id, runs


def batch_json(session: Session, account_id: str, batch_id: str) -> dict[str, Any]:
    """The batch's runs (oldest first) and its progress: `total`, `done` (ended runs), `counts` by status."""
    runs = list(
        session.scalars(
            select(Run)
            .where(Run.batch_id == batch_id.lower(), Run.account_id == account_id)
            .order_by(Run.created_at, Run.id)
        )
    )
    if not runs:
        raise NotFound(f"no batch {batch_id} in this account")
    counts = Counter(run.status for run in runs)
    done = sum(n for status, n in counts.items() if RunStatus(status).terminal)
    return {
        "id": batch_id.lower(),
        "workflowId": runs[0].workflow_id,
        "total": len(runs),
        "done": done,
        "counts": dict(counts),
        "runs": [summary_json(run) for run in runs],
    }
