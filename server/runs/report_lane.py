"""A lane for ordinary `runs.report` requests past the generic request machinery.

Phones call `runs.report` at every step, and most of what a small report cost the server was not the
report: the input guard reading and scanning the body, the router trying routes, FastAPI solving
the route's dependencies, its request and response wrappers. An ordinary report — `POST
/api/v1/runs.report`, no query, one `Content-Type: application/json`, a bearer device token, a
body that the input guard would pass unparsed and that validates as `RunsReportIn` — is answered
here with the very code the route runs (`apply_reports` in one transaction, `reporting_device`).

Everything else goes the usual way, untouched or with the body already read handed on: a missing or
odd token, another content type, a query, a body the guard must look into, a body that does not
validate. So every refusal is the route's own, word for word, and the route stays the one
documented in /openapi.json. The lane sits inside the request-id and body-size middlewares (the
same access log, metrics, request id and 413s) and its errors go to the app's own exception
handlers; what none handles goes on to the server-error middleware, as from the route.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interpreter import safe_json
from server.auth import DEVICE_TOKEN_PREFIX
from server.db import in_one_transaction
from server.runs.endpoints import apply_reports, router
from server.runs.report_device import reporting_device
from server.runs.schemas import RunsReportIn

PATH = "/api/v1/runs.report"


class ReportLane:
    """Answers ordinary `runs.report` requests itself (the module docstring says which); hands every
    other request to `app` as it came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == "/runs.report")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("query_string")
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        credentials = _ordinary_headers(scope["headers"])
        if credentials is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()  # over the size limit: raises, and the size middleware answers
            if message["type"] != "http.request":
                await self.app(scope, _replay(b"".join(chunks), message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        report = _ordinary_body(body)
        if report is None:
            await self.app(scope, _replay(body, None, receive), send)
            return
        scope["route"] = self.route  # the access log's and the metrics' route, as the router sets it
        request = Request(scope, receive, send)

        def work(session: Session) -> list[dict[str, Any]]:
            return apply_reports(session, request.app, reporting_device(session, credentials), report.runs)

        try:
            response = JSONResponse({"runs": await in_one_transaction(request, work)})
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise  # the server-error middleware answers 500, as for the route
            response = await handler(request, exc)
        await response(scope, receive, send)


def _ordinary_headers(headers: list[tuple[bytes, bytes]]) -> HTTPAuthorizationCredentials | None:
    """The device token of a request with one JSON content type and a bearer device token, else None.

    The credentials are what the route's `HTTPBearer` makes of the same header (its first)."""
    content_types = [value for name, value in headers if name == b"content-type"]
    if len(content_types) != 1 or content_types[0].split(b";", 1)[0].strip().lower() != b"application/json":
        return None
    authorization = next((value for name, value in headers if name == b"authorization"), None)
    if authorization is None:
        return None
    scheme, token = get_authorization_scheme_param(authorization.decode("latin-1"))
    if scheme.lower() != "bearer" or not token.startswith(DEVICE_TOKEN_PREFIX):
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


def _ordinary_body(body: bytes) -> RunsReportIn | None:
    """The report, when the input guard would pass `body` without a look and it validates; else None."""
    if not body or safe_json.needs_check(body):
        return None
    try:
        return RunsReportIn.model_validate_json(body)
    except ValidationError:
        return None


def _handler_for(request: Request, exc: Exception) -> Any:
    """The app's exception handler for `exc` as the exception middleware picks it (nearest class
    first); None for what only the server-error middleware handles (`Exception`: a 500)."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A `receive` that hands on the body already read (or the disconnect), then defers to the real one."""
    queue: list[Message] = [pending] if pending is not None else []
    if pending is None or body:
        queue.insert(0, {"type": "http.request", "body": body, "more_body": pending is not None})

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
