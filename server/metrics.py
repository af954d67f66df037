"""`GET /metrics`: the server's health in the Prometheus text format (prometheus-client).

Two kinds of figures, each from where it is true:

* **from the database** (read at each scrape, the same whichever process answers): runs queued,
  running and waiting for an approval; the queue's depth and the age of its oldest run; how late
  the most overdue cron schedule is (`scheduler lag`: 0 while the scheduler keeps up); webhook
  deliveries waiting and how overdue the oldest is. These read small indexes (a partial index
  of unfinished runs), so a scrape costs milliseconds at a million runs.
* **per process** (what this process saw): `runs.report` latency and results, runs that ended,
  HTTP request latency by route, server-sent-event subscribers, database pool connections in
  use. `phoneflow serve --workers N` sums its processes' figures by itself: it gives them a
  private folder (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) where each
  writes its figures and whichever answers `/metrics` sums them; subscribers, connections and
  pool capacity count live processes only (the supervisor marks a dead process's gauges). Separate
  `phoneflow serve` commands on one machine sum theirs when started with `PROMETHEUS_MULTIPROC_DIR`
  naming one empty folder writable by all of them. Processes on other machines are scraped one
  by one; take the database figures' `max`, not their sum.

Access: `/metrics` answers only with `Authorization: Bearer <PHONEFLOW_METRICS_TOKEN>`, or to
anyone when `PHONEFLOW_METRICS_PUBLIC=true` (a private network). With neither it is off and
says how to turn it on.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, event, func, select

from interpreter.trace import RunStatus
from server.db import utcnow
from server.errors import NotFound, Unauthorized, problem_responses
from server.runs.models import ACTIVE_RUN_STATUSES, Run, active_run
from server.schedules.models import Schedule
from server.settings import Settings
from server.webhooks.models import DeliveryStatus, WebhookDelivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
API_PREFIX = "/api/v1"

# This process's own metrics. Not prometheus-client's global registry: a process that makes several
# apps (the tests) must not register twice, and nothing else's metrics leak into ours.
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

REPORT_SECONDS = Histogram(
    "phoneflow_runs_report_duration_seconds",
    "Time to answer a runs.report request, body parsing included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=PROCESS_REGISTRY,
)
REPORTED_RUNS = Counter(
    "phoneflow_runs_reported_total",
    "Runs sent in runs.report batches, by what the server did with each (stored, unchanged, rejected).",
    ["result"],
    registry=PROCESS_REGISTRY,
)
FINISHED_RUNS = Counter(
    "phoneflow_runs_finished_total",
    "Runs that reached a final status (success, failed, cancelled, timeout).",
    ["status"],
    registry=PROCESS_REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "phoneflow_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route (event streams are left out).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=PROCESS_REGISTRY,
)
SSE_SUBSCRIBERS = Gauge(
    "phoneflow_sse_subscribers",
    "Open run.updated event streams (API and dashboard).",
    multiprocess_mode="livesum",
    registry=PROCESS_REGISTRY,
)
DB_CONNECTIONS_IN_USE = Gauge(
    "phoneflow_db_pool_connections_in_use",
    "Database connections checked out of the pool now.",
    multiprocess_mode="livesum",
    registry=PROCESS_REGISTRY,
)
DB_POOL_CAPACITY = Gauge(
    "phoneflow_db_pool_capacity",
    "Connections the pool may hold at most (pool size + overflow).",
    multiprocess_mode="livesum",
    registry=PROCESS_REGISTRY,
)


def count_reported(results: Iterable[str]) -> None:
    """Count a runs.report batch's answers (stored, unchanged, rejected)."""
    for result in results:
        REPORTED_RUNS.labels(result).inc()


def watch_pool(engine: Engine) -> None:
    """Count the engine's checked-out connections in `phoneflow_db_pool_connections_in_use`."""
    event.listen(engine, "checkout", lambda *_: DB_CONNECTIONS_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: DB_CONNECTIONS_IN_USE.dec())


def count_pool(capacity: int) -> None:
    """The app starts serving: its pool's capacity counts (until `forget_pool`)."""
    DB_POOL_CAPACITY.inc(capacity)


def forget_pool(capacity: int) -> None:
    """The app stops serving: its pool's capacity no longer counts."""
    DB_POOL_CAPACITY.dec(capacity)


def multiprocess_dir() -> str | None:
    """The folder of prometheus-client's multiprocess mode, when this process writes its figures there.

    Read from the environment when asked: `phoneflow serve --workers N` sets it for its processes."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def process_exited(pid: int | None = None) -> None:
    """In multiprocess mode, drop the live gauges (subscribers, connections) of this process, or of
    the process `pid` that ended without saying so (`phoneflow serve --workers N` after a crash)."""
    folder = multiprocess_dir()
    if folder:
        mark_process_dead(os.getpid() if pid is None else pid, folder)  # type: ignore[no-untyped-call]


def observe_request(method: str, route: str | None, path: str, seconds: float, streaming: bool) -> None:
    """Record one answered request (called by the access-log middleware)."""
    if streaming:
        return
    if path == "/api/v1/runs.report":
        REPORT_SECONDS.observe(seconds)
    # The route's template, never the raw path: ids would make a label value per run. Routes of the
    # API router know their path without its prefix.
    template = route or "unmatched"
    if route and path.startswith(API_PREFIX + "/") and not route.startswith(API_PREFIX):
        template = API_PREFIX + route
    REQUEST_SECONDS.labels(method, template).observe(seconds)


class DatabaseCollector(Collector):
    """The figures whose truth is the database, read at each scrape."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        active = list(ACTIVE_RUN_STATUSES)
        conn = self.conn
        counts: dict[str, int] = {
            status: int(n)
            for status, n in conn.execute(
                select(Run.status, func.count()).where(active_run()).group_by(Run.status)
            )
        }
        oldest_queued = conn.execute(
            select(func.min(Run.created_at)).where(active_run(), Run.status == RunStatus.QUEUED.value)
        ).scalar()
        overdue = conn.execute(
            select(func.min(Schedule.next_fire_at)).where(
                Schedule.enabled.is_(True), Schedule.next_fire_at <= now
            )
        ).scalar()
        pending, oldest_pending = conn.execute(
            select(func.count(), func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value
            )
        ).one()
        runs = GaugeMetricFamily(
            "phoneflow_runs", "Unfinished runs by status (from the database).", labels=["status"]
        )
        for status in active:
            runs.add_metric([status], counts.get(status, 0))
        yield runs
        yield GaugeMetricFamily(
            "phoneflow_queue_depth",
            "Runs queued, waiting for their phone to claim them.",
            counts.get("queued", 0),
        )
        yield GaugeMetricFamily(
            "phoneflow_queue_oldest_age_seconds",
            "How long the oldest queued run has waited (0 when none waits).",
            _age(oldest_queued, now),
        )
        yield GaugeMetricFamily(
            "phoneflow_scheduler_lag_seconds",
            "How late the most overdue cron schedule is (0 while the scheduler keeps up).",
            _age(overdue, now),
        )
        yield GaugeMetricFamily(
            "phoneflow_webhook_deliveries_pending", "Webhook deliveries waiting for an attempt.", int(pending)
        )
        yield GaugeMetricFamily(
            "phoneflow_webhook_oldest_pending_age_seconds",
            "How long the most overdue webhook delivery has been due (0 when none is).",
            _age(oldest_pending, now),
        )


def _age(moment: datetime | str | None, now: datetime) -> float:
    """Seconds from `moment` to `now`; SQLite hands an aggregate's timestamp back as naive text."""
    if moment is None:
        return 0.0
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds())


def render(engine: Engine) -> bytes:
    """The whole text exposition: the database's figures and this process's (or every process's).

    The database connection is held until the end, so the pool figures count the scrape's own."""
    with engine.connect() as conn:
        database = CollectorRegistry()
        database.register(DatabaseCollector(conn))
        database_part = generate_latest(database)
        conn.rollback()
        if multiprocess_dir():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry) + database_part
        return generate_latest(PROCESS_REGISTRY) + database_part


router = APIRouter(tags=["metrics"])


def _check_access(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.metrics_public:
        return
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        raise NotFound(
            "metrics are off: set PHONEFLOW_METRICS_TOKEN (scrapers then send it as a bearer token) "
            "or PHONEFLOW_METRICS_PUBLIC=true, and restart the server"
        )
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise Unauthorized(
            "send 'Authorization: Bearer <PHONEFLOW_METRICS_TOKEN>' (in Prometheus: "
            "authorization: {credentials: ...} in the scrape config)"
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "The metrics"},
        **problem_responses(401, 404, c401="Wrong or missing metrics token", c404="Metrics are off"),
    },
)
def metrics(request: Request) -> Response:
    """Runs by status, queue depth and age, scheduler lag, report latency, SSE subscribers, pool use."""
    _check_access(request)
    return Response(render(request.app.state.engine), media_type=CONTENT_TYPE)
