"""A phone's own new run, reported alone: one statement in autocommit, no transaction around it.

Stored the general way (report_lane.py → `apply_reports` in `in_one_transaction`), such a report
is one write statement (fresh_run.py) but four round trips to PostgreSQL: psycopg's `BEGIN`, the
device found by its token, the statement, `COMMIT`, each with the driver's and SQLAlchemy's work
around it. Here it is one round trip: the statement runs on a pooled connection in autocommit (a
single statement is its own transaction, so it is written whole or not at all, and its `NOTIFY`
goes out at its commit), and it checks the device itself: the token's hash must still find the
device this process found for it before (`remember_device`), unrevoked.

Only what that one statement writes in full takes this way: a run reported alone, made on the phone
(`trigger: device`), of a workflow version this process has seen in the account, that passes the
report's checks (report.precheck); its input values, engine log and, when it ends, failed steps
are written by the statement too. When it ends, nothing else may be due in the transaction that
ends it, which the statement checks: no webhook endpoint in its account (their deliveries are
enqueued with the run), and, when it failed or timed out, no automatic retry in its workflow.
Whenever the statement inserts nothing — the run is stored already (a retry, a concurrent first
report, another device's run), the token is revoked or now another device's, an endpoint exists,
a retry is due — nothing was written and the report goes the general way, which answers exactly as
before (the 401, the verdict on a stored run). Whatever the general path does after its commit is
done here after the statement: `run.updated` to this process's subscribers, the metrics (a run new
to the server has no frames yet, so its end asks for no video: its frames, uploaded once it is
stored, ask for it themselves, server/runs/video.py).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from fastapi import FastAPI

from server.db import utcnow
from server.metrics import FINISHED_RUNS, count_reported
from server.runs import lifecycle
from server.runs.events import get_hub
from server.runs.fresh_run import store_alone
from server.runs.report import new_run_values, precheck, version_seen
from server.runs.schemas import RunReportIn

# The device of each device token's hash this process found (runs.report's device lookup): only a
# guess of which device the token is, that the statement checks. Bounded as report._VERSIONS_SEEN is.
_DEVICES_SEEN: dict[str, tuple[str, str]] = {}
_DEVICES_SEEN_MAX = 10_000

# What ends a run besides what the statement writes: the listeners of lifecycle.runs_ended this lane
# knows to have nothing to do for the runs it takes (webhooks: no endpoint, the statement checks;
# automatic retries: none in the workflow of a run that failed or timed out, the statement checks;
# videos: a new run has no frames, `has_frames` is false: nothing to ask). A listener added later
# ends runs the general way until it is known here (tests/server/test_lone_report.py says so).
_KNOWN_LISTENERS = frozenset(
    {
        ("server.webhooks.events", "runs_ended"),
        ("server.runs.retries", "_auto_retry"),
        ("server.runs.video", "_runs_ended"),
    }
)


def remember_device(token_hash: str, device_id: str, account_id: str) -> None:
    """The token with this hash found this device (unrevoked) just now."""
    if len(_DEVICES_SEEN) > _DEVICES_SEEN_MAX:
        _DEVICES_SEEN.clear()
    _DEVICES_SEEN[token_hash] = (device_id, account_id)


def listeners_known() -> bool:
    """Whether every runs-ended listener is one this lane knows what to do about."""
    return all((f.__module__, f.__name__) in _KNOWN_LISTENERS for f in lifecycle.listeners())


def _takes(report: RunReportIn) -> bool:
    """Whether one statement stores all that the general path would of this report (the module docstring
    says why each)."""
    return report.trigger == "device" and (not report.status.terminal or listeners_known())


def store_lone_report(
    app: FastAPI, token_hash: str | None, runs: list[RunReportIn]
) -> list[dict[str, Any]] | None:
    """runs.report's answer for `runs` when they are one new run this lane stored (committed); None when
    the report is not one it takes or it stored nothing (the general path then answers)."""
    if token_hash is None or len(runs) != 1:
        return None
    report = runs[0]
    seen = _DEVICES_SEEN.get(token_hash)
    if seen is None or not _takes(report):
        return None
    device_id, account_id = seen
    workflow_id = version_seen(account_id, report.workflow_version_id)
    if workflow_id is None or precheck(report, device_id, {report.workflow_version_id: workflow_id}):
        return None
    engine = app.state.engine
    if engine.dialect.name != "postgresql":
        return None
    now = utcnow()
    values = new_run_values(account_id, device_id, report, now)
    pooled = engine.raw_connection()
    driver: psycopg.Connection[Any] = pooled.driver_connection
    try:
        driver.autocommit = True
        fresh = store_alone(driver, report, values, now, token_hash)
    except psycopg.OperationalError:
        # The connection broke, or the server stopped the statement (shutdown, deadlock, timeout):
        # whether it committed is unknown, as for a COMMIT whose answer is lost. The general path finds
        # out (a stored run is judged) and answers as it would have (503 while the database is away).
        fresh = None
    finally:
        with contextlib.suppress(psycopg.Error):
            if not driver.closed:
                driver.autocommit = False  # the pool hands out connections as SQLAlchemy expects them
        if driver.closed or driver.autocommit:
            pooled.invalidate()  # broken: not back into the pool
        pooled.close()
    if fresh is None:
        # Stored already, or the device is not what was remembered: the general path finds out which.
        _DEVICES_SEEN.pop(token_hash, None)
        return None
    # Committed: what the general path does after its commit (service.record_changes, runs_ended,
    # apply_reports), in its order.
    get_hub(app).notify()
    if report.status.terminal:
        FINISHED_RUNS.labels(values["status"]).inc()
    count_reported(["stored"])
    # A run new to the server has no cancel asked.
    return [{"id": report.id, "result": "stored", "reason": None, "cancelRequested": False}]
