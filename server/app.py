"""The FastAPI application: `create_app(settings)` wires storage, errors, logs, jobs and routers."""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from server import metrics, migrate
from server.artifact_store import store_from_settings
from server.artifact_store.service import use_store
from server.dashboard.routes import router as dashboard_router
from server.db import make_engine, make_session_factory
from server.errors import (
    BodySizeLimitMiddleware,
    install_error_handlers,
    problem_responses,
    reject_unknown_query_params,
)
from server.input_guard import InputGuardMiddleware
from server.observability import RequestIdMiddleware, configure_logging
from server.runs.claim_lane import ClaimLane
from server.runs.report_lane import ReportLane
from server.runs.video import close_assembler, install_assembler
from server.scheduler import build_scheduler, start_scheduler, stop_scheduler
from server.settings import Settings
from server.webhooks.events import PUBLIC_URL_KEY

API_PREFIX = "/api/v1"
_log = logging.getLogger("phoneflow.server")

# Routers of every domain, as (module, attribute). The runs domain is built in parallel;
# a router whose module is not there yet is skipped with a warning (never silently).
# A request is matched against the routes in this order, one by one (about 15 µs each, a third of
# an unmatched request): the routes phones call at every step come first (the wake-up poll, the
# step gate and heartbeat, runs.report and the claim). No two routes here match the same request.
ROUTERS: tuple[tuple[str, str], ...] = (
    ("server.runs.wakeup", "router"),
    ("server.devices.endpoints", "router"),
    ("server.runs.endpoints", "router"),
    ("server.accounts.endpoints", "router"),
    ("server.workflows.endpoints", "router"),
    ("server.denylist.endpoints", "router"),
    ("server.devices.command_endpoints", "router"),
    ("server.appmodels.endpoints", "router"),
    ("server.runs.events", "router"),
    ("server.schedules.endpoints", "router"),
    ("server.approvals.endpoints", "router"),
    ("server.webhooks.endpoints", "router"),
    ("server.hooks.endpoints", "router"),
)

# Every API route may answer these; documenting them keeps clients (and schemathesis) honest.
COMMON_RESPONSES = problem_responses(400, 401, 404, 413, 422, 503)


def _load_router(module_name: str, attr: str) -> APIRouter | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        _log.warning("router %s is not available yet: its module is missing", module_name)
        return None
    router: APIRouter = getattr(module, attr)
    return router


# Young objects collected every 50,000 net allocations instead of CPython's 700.
_SERVING_GEN0_THRESHOLD = 50_000


@contextmanager
def collector_tuned_for_serving() -> Iterator[None]:
    """The garbage collector set for a long-lived server process while the app runs; restored after.

    * What exists once the app has started (modules, routes, mappers, the pools) lives as long as
      the process: frozen, full collections stop re-walking it. A runs.report batch makes
      thousands of objects and used to pay ~10 ms for collections that re-scanned the app itself.
    * At CPython's default (a young collection every 700 allocations) fanning one run.updated out
      to 1,000 subscribers runs dozens of young collections mid-flight; what is in flight gets
      promoted, and every few events that triggers a full collection over every connection's
      objects: a 100-150 ms pause that stalled every subscriber's delivery (bench/ingest.py,
      measured with gc.callbacks). At 50,000 the fan-out's garbage dies young and no full
      collection ran in the benchmark's event phase; young garbage may use a few MB more.
    Unfrozen and restored at shutdown, so that a process that starts many apps (the tests) can
    still free them.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_SERVING_GEN0_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def give_notices(settings: Settings) -> None:
    """Log what an operator should know of these settings at a start (once a server, however many
    processes it has: `phoneflow serve` calls this, then its apps keep quiet: `with_notices_given`)."""
    from server.notifications.mailer import warn_if_off

    if settings.start_scheduler:
        warn_if_off(settings)


@cache
def _api_router() -> APIRouter:
    """The API's routes under /api/v1, built once per process: FastAPI works out each route's
    parameters when a router is included, and an app made again (tests make hundreds) then
    reuses that work instead of repeating it."""
    api = APIRouter(
        prefix=API_PREFIX, responses=COMMON_RESPONSES, dependencies=[Depends(reject_unknown_query_params)]
    )
    for module_name, attr in ROUTERS:
        router = _load_router(module_name, attr)
        if router is not None:
            api.include_router(router)
    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    """The phoneflow server for `settings` (read from the environment when not given)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
    )
    session_factory = make_session_factory(engine)
    # What code below a session needs of the settings (webhook payloads link to the dashboard).
    session_factory.configure(info={PUBLIC_URL_KEY: settings.public_url})
    artifact_store = store_from_settings(settings)
    use_store(session_factory, artifact_store)
    pool_capacity = settings.db_pool_size + settings.db_max_overflow
    metrics.watch_pool(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations:
            await run_in_threadpool(migrate.upgrade, engine)
        await run_in_threadpool(artifact_store.check)
        scheduler = build_scheduler(settings, session_factory) if settings.start_scheduler else None
        jobs_turn = start_scheduler(scheduler, engine) if scheduler is not None else None
        app.state.scheduler = scheduler
        app.state.jobs_turn = jobs_turn
        metrics.count_pool(pool_capacity)  # paired with forget_pool below, once per serving
        try:
            with collector_tuned_for_serving():
                yield
        finally:
            if jobs_turn is not None:
                await run_in_threadpool(jobs_turn.stop)
            if scheduler is not None:
                await run_in_threadpool(stop_scheduler, scheduler)
            await run_in_threadpool(close_assembler, app)
            engine.dispose()
            metrics.forget_pool(pool_capacity)
            metrics.process_exited()

    # /docs and /redoc from a packaged copy of Swagger UI and ReDoc: they work without internet.
    app = FastAPIOffline(
        title="phoneflow",
        version="1.0.0",
        summary="Automation workflows on fleets of Android phones.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.artifact_store = artifact_store
    install_assembler(app, session_factory, settings)

    install_error_handlers(app)
    # Inside the size limit (it reads whole bodies): what no endpoint could store is a 422 here.
    app.add_middleware(InputGuardMiddleware)
    # Ordinary runs.report requests (phones send one a step) are answered ahead of the guard, the
    # router and FastAPI's request handling; any other request passes untouched (report_lane.py).
    app.add_middleware(ReportLane)
    # Ordinary claims likewise (claim_lane.py).
    app.add_middleware(ClaimLane)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        artifact_max_bytes=settings.artifact_max_bytes,
    )
    # Added last, so it runs first: every log line of the request, 413s included, carries the id.
    app.add_middleware(RequestIdMiddleware)

    app.include_router(_api_router())
    # Prometheus metrics at `/metrics` (a token or a setting opens it: server/metrics.py).
    app.include_router(metrics.router)
    # The web dashboard at `/`: server-rendered pages for a signed-in account.
    app.include_router(dashboard_router)

    @app.get("/healthz", tags=["health"], summary="Liveness and database reachability")
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    return app
