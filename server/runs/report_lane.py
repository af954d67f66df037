"""A lane for ordinary `runs.report` requests past the generic request machinery.

Phones call `runs.report` at every step, and most of what a small report cost the server was not the
report: the input guard reading and scanning the body, the router trying routes, FastAPI solving
the route's dependencies, its request and response wrappers. An ordinary report — `POST
/api/v1/runs.report`, no query, one `Content-Type: application/json`, a bearer device token, a
body that the input guard would pass unparsed and that validates as `RunsReportIn` — is answered
here with the very code the route runs (`apply_reports` in one transaction, `reporting_device`), or,
for a phone's own new run reported alone, by one statement in autocommit (lone_report.py).

Everything else goes the usual way, untouched or with the body already read handed on: a missing or
odd token, another content type, a query, a body the guard must look into, a body that does not
validate. So every refusal is the route's own, word for word, and the route stays the one
documented in /openapi.json. What lanes share is in device_lane.py.
"""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from server.auth import device_token_hash
from server.db import in_transaction, session_factory_from
from server.runs.device_lane import NOT_ORDINARY, DeviceLane, validated_json
from server.runs.endpoints import apply_reports, router
from server.runs.lone_report import store_lone_report
from server.runs.report_device import reporting_device
from server.runs.schemas import RunsReportIn
from server.worker_threads import run_in_worker


class ReportLane(DeviceLane):
    """Answers ordinary `runs.report` requests itself (the module docstring says which); hands every
    other request to `app` as it came."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, router, "/runs.report")

    def parse(self, body: bytes, json_body: bool) -> Any:
        return validated_json(RunsReportIn, body) if json_body else NOT_ORDINARY

    async def answer(
        self, request: Request, credentials: HTTPAuthorizationCredentials, parsed: Any
    ) -> Response:
        report: RunsReportIn = parsed

        factory = session_factory_from(request)

        def work(session: Session) -> list[dict[str, Any]]:
            return apply_reports(session, request.app, reporting_device(session, credentials), report.runs)

        def answered() -> list[dict[str, Any]]:
            # A phone's own new run reported alone is one statement (lone_report.py); the rest, and
            # whatever it leaves, take the transaction (in the same worker thread).
            alone = store_lone_report(request.app, device_token_hash(credentials), report.runs)
            return alone if alone is not None else in_transaction(factory, work)

        return JSONResponse({"runs": await run_in_worker(answered)})
