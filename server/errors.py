"""The server's errors and the one place that turns them into problem bodies.

    AppError(message, status_code, title)        any refusal the caller can act on
    ├── BadRequest              400  the request cannot be read (malformed JSON, bad header)
    ├── Unauthorized            401  no token, unknown token, revoked token: get a token
    ├── Forbidden               403  the caller is known but may not do this (e.g. not a named approver)
    ├── NotFound                404  no such object *in the caller's account*
    ├── Conflict                409  the object is in a state that forbids this
    ├── PayloadTooLarge         413  the body is over the configured limit
    ├── ValidationFailed        422  the body is readable but wrong: `errors` lists each problem
    ├── RateLimited             429  too many attempts: wait `retry_after_s`
    └── Unavailable             503  the database refused or timed out: retry after `Retry-After`

Every error answer is `application/problem+json` with `title`, `status`, `detail`
and, for validation, `errors: [{pointer, message, hint}]` (RFC 6901 pointers into
the request). Bad input is never a 500.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("phoneflow.server")


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with a request, located by a JSON pointer into it."""

    pointer: str
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "message": self.message, "hint": self.hint}


class AppError(Exception):
    """A refusal with a status code and words that say what to do."""

    status_code = 400
    title = "Bad request"

    def __init__(self, message: str, status_code: int | None = None, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if title is not None:
            self.title = title
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status_code,
            "detail": self.message,
        }


class BadRequest(AppError):
    status_code = 400
    title = "Bad request"


class Unauthorized(AppError):
    status_code = 401
    title = "Unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    title = "Forbidden"


class NotFound(AppError):
    status_code = 404
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    title = "Conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    title = "Payload too large"


class ValidationFailed(AppError):
    """422 with every problem listed; `errors` items have `pointer`, `message`, `hint`."""

    status_code = 422
    title = "Validation failed"

    def __init__(self, errors: Iterable[FieldProblem | dict[str, Any]], message: str | None = None) -> None:
        self.errors = [e if isinstance(e, FieldProblem) else FieldProblem(**e) for e in errors]
        if message is None:
            count = len(self.errors)
            first = self.errors[0] if self.errors else None
            message = f"{count} problem{'s' if count != 1 else ''} in the request" + (
                f"; first at {first.pointer or '/'}: {first.message}" if first else ""
            )
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [e.to_json() for e in self.errors]}


class RateLimited(AppError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class Unavailable(AppError):
    status_code = 503
    title = "Service unavailable"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


# What the database answers when it is down, full (PostgreSQL's max_connections, the pool's
# own limit) or busy (SQLite's lock, a deadlock or serialisation failure): all pass with time.
DATABASE_RETRY_AFTER_S = 2


class ProblemFieldModel(BaseModel):
    """OpenAPI shape of one validation problem."""

    model_config = ConfigDict(extra="forbid")
    pointer: str
    message: str
    hint: str | None = None


class ProblemModel(BaseModel):
    """OpenAPI shape of every error body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldModel] | None = Field(default=None)


_DEFAULT_DESCRIPTIONS = {
    400: "The request cannot be read (malformed JSON)",
    401: "No token, or an unknown or revoked one",
    403: "The caller may not do this",
    404: "No such object in the caller's account",
    409: "The object's state forbids this",
    410: "Gone (expired)",
    413: "The body is over the size limit",
    422: "The body or parameters are wrong; `errors` lists each problem",
    429: "Too many attempts; see Retry-After",
    503: "The database could not serve the request right now; retry after Retry-After",
}


def problem_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem bodies (`descriptions` as `c409="..."` overrides)."""
    schema = {"$ref": "#/components/schemas/ProblemModel"}
    return {
        code: {
            "model": ProblemModel,
            "description": descriptions.get(f"c{code}", _DEFAULT_DESCRIPTIONS.get(code, "Error")),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for code in codes
    }


class ProblemResponse(JSONResponse):
    """A problem body that always renders: a refusal may quote what was refused (a key holding a lone
    surrogate, which UTF-8 cannot carry); such a character goes out as its JSON escape."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def problem_response(error: AppError) -> JSONResponse:
    return ProblemResponse(
        error.body(), status_code=error.status_code, headers=error.headers, media_type=PROBLEM_JSON
    )


def pointer_from_loc(loc: Sequence[int | str]) -> str:
    """A JSON pointer into the request from a pydantic location (`("body", "name")` → `/name`)."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where = parts.pop(0)
        if where != "body":
            prefix = f"{where}:"
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return prefix + ("/" + "/".join(escaped) if escaped else "")


_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field; it is not part of this request",
    "json_invalid": "send a valid JSON document with Content-Type: application/json",
    "string_type": "send a JSON string",
    "int_parsing": "send a whole number",
    "int_type": "send a whole number",
    "bool_type": "send true or false",
    "dict_type": "send a JSON object",
    "model_type": "send a JSON object",
    "list_type": "send a JSON array",
    "literal_error": "use one of the values listed in the message",
    "enum": "use one of the values listed in the message",
    "uuid_parsing": "send a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e",
    "too_short": "send more items",
    "too_long": "send fewer items",
    "string_too_short": "send a longer string",
    "string_too_long": "send a shorter string",
    "greater_than_equal": "send a larger number",
    "less_than_equal": "send a smaller number",
}


def problems_from_validation(errors: Sequence[Any]) -> list[FieldProblem]:
    """FastAPI/pydantic validation errors as located problems with a hint each."""
    problems = []
    for err in errors:
        kind = str(err.get("type", ""))
        loc = err.get("loc", ())
        message = str(err.get("msg", "invalid value"))
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            message = f"malformed JSON: {ctx.get('error', message)}"
            loc = ("body",)
        problems.append(FieldProblem(pointer_from_loc(loc), message, _HINTS.get(kind)))
    return problems


async def _app_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(exc)


async def _validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = problems_from_validation(exc.errors())
    if any(p.message.startswith("malformed JSON") for p in problems):
        malformed = next(p for p in problems if p.message.startswith("malformed JSON"))
        bad = BadRequest(f"{malformed.message}; send a valid JSON document", title="Malformed JSON")
        return problem_response(bad)
    return problem_response(ValidationFailed(problems))


_HTTP_TITLES = {
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Payload too large",
    415: "Unsupported media type",
}


# A browser's unknown address (a guess like /login, a stale link): a page with the way in, not JSON.
_NO_PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found · phoneflow</title></head>
<body><h1>Not found</h1><p>phoneflow has no page at <code>{path}</code>.</p>
<p>The dashboard starts at <a href="/">/</a> (sign in at <a href="/signin">/signin</a> with an
account's API token); the API lives under <code>/api/v1</code> (<a href="/docs">/docs</a>).</p>
</body></html>
"""


def _wants_page(request: Request) -> bool:
    """A browser navigating (GET, HTML accepted) outside the API."""
    return (
        request.method in ("GET", "HEAD")
        and not request.url.path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
    )


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        if _wants_page(request):
            return HTMLResponse(_NO_PAGE_HTML.format(path=html.escape(request.url.path)), status_code=404)
        detail = "no such path; the API lives under /api/v1 (see /openapi.json)"
    elif exc.status_code == 405:
        detail = "this path does not accept that method; see /openapi.json for what it does accept"
    error = AppError(detail, exc.status_code, _HTTP_TITLES.get(exc.status_code, "Error"))
    error.headers = dict(exc.headers or {})
    return problem_response(error)


async def _database_unavailable_handler(request: Request, exc: Exception) -> Response:
    # The cause is for the operator (logged with the request id), not for every API client.
    _log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
    error = Unavailable(
        "the database could not serve this request right now (it is down, busy or out of "
        f"connections); retry in {DATABASE_RETRY_AFTER_S} s. If it keeps happening, the server's "
        "log has the cause under this X-Request-ID — e.g. PostgreSQL's max_connections is below "
        "what the server processes' pools may open (PHONEFLOW_DB_POOL_SIZE + "
        "PHONEFLOW_DB_MAX_OVERFLOW each)",
        DATABASE_RETRY_AFTER_S,
    )
    return problem_response(error)


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    error = AppError(
        "the server failed while handling this request; it is logged — retry, and report the "
        "X-Request-ID header if it keeps happening",
        500,
        "Internal server error",
    )
    return problem_response(error)


def _query_names(dependant: Dependant) -> dict[str, bool]:
    """The route's query parameters, each with whether it takes several values (a list)."""
    names = {param.alias: _takes_many(param.field_info.annotation) for param in dependant.query_params}
    for sub in dependant.dependencies:
        names.update(_query_names(sub))
    return names


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, set, tuple, frozenset):
        return True
    return any(_takes_many(arg) for arg in get_args(annotation)) if origin is not None else False


async def reject_unknown_query_params(request: Request) -> None:
    """A request dependency: a query parameter the route does not take is a 422, not silently ignored,
    and so is a single-value parameter given twice (which of the two would count?).

    `?stauts=failed` would otherwise list every run; saying so is kinder. `async def` although it
    awaits nothing: FastAPI runs a plain `def` dependency in a worker thread, and this one runs
    for every API request (the hand-off and back cost more CPU than the check, ~20 % of a
    single-run `runs.report`'s GIL time).
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    allowed = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in allowed]
    repeated = [
        name
        for name in dict.fromkeys(request.query_params.keys())
        if name in allowed and not allowed[name] and len(request.query_params.getlist(name)) > 1
    ]
    if repeated:
        raise ValidationFailed(
            [
                FieldProblem(
                    f"query:{name}",
                    f"the query parameter '{name}' is given {len(request.query_params.getlist(name))} times",
                    "send it once; it takes one value",
                )
                for name in repeated
            ]
        )
    if unknown:
        takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
        raise ValidationFailed(
            [
                FieldProblem(
                    f"query:{name}",
                    f"unknown query parameter '{name}'",
                    f"remove it; this endpoint takes {takes}",
                )
                for name in unknown
            ]
        )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through a problem body."""
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(sa_exc.OperationalError, _database_unavailable_handler)
    app.add_exception_handler(sa_exc.TimeoutError, _database_unavailable_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


# What a multipart upload adds around its file (boundaries, part headers, the name field).
MULTIPART_OVERHEAD = 64 * 1024
# The requests that carry a run's file (an artifact, the live screen): they may be as large as one.
_FILE_UPLOADS = {
    "POST": re.compile(r"/api/v1/runs/[^/]+/artifacts/?"),
    "PUT": re.compile(r"/api/v1/runs/[^/]+/live-frame/?"),
}


class BodySizeLimitMiddleware:
    """Refuses bodies over their limit with a 413 problem, by header or while streaming.

    Every body may have `max_bytes`; an artifact or live-screen upload may carry a file of
    `artifact_max_bytes` (plus its multipart wrapping), so the two limits never contradict each other.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, artifact_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.artifact_max_bytes = artifact_max_bytes

    def _limit(self, scope: Scope) -> tuple[int, bool]:
        """The request's limit, and whether it is a file upload's."""
        path: str = scope.get("path", "")
        upload = _FILE_UPLOADS.get(scope.get("method", ""))
        if self.artifact_max_bytes is not None and upload is not None and upload.fullmatch(path):
            return self.artifact_max_bytes + MULTIPART_OVERHEAD, True
        return self.max_bytes, False

    def _too_large(self, scope: Scope, file_upload: bool) -> PayloadTooLarge:
        """The refusal, made only for a body over its limit (each request paid for one before)."""
        if file_upload:
            return PayloadTooLarge(
                f"the file is larger than {self.artifact_max_bytes} bytes (the server's "
                "PHONEFLOW_ARTIFACT_MAX_BYTES); send a smaller file"
            )
        advice = "send a smaller body"
        if scope.get("path", "").endswith("/runs.report"):
            advice = "split the run reports into smaller batches"
        return PayloadTooLarge(
            f"the request body is larger than {self.max_bytes} bytes (the server's "
            f"PHONEFLOW_MAX_BODY_BYTES); {advice}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, file_upload = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await problem_response(BadRequest("the Content-Length header is not a number"))(
                        scope, receive, send
                    )
                    return
                if declared > max_bytes:
                    await problem_response(self._too_large(scope, file_upload))(scope, receive, send)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge(self._too_large(scope, file_upload).message)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await problem_response(self._too_large(scope, file_upload))(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from `receive` mid-stream; FastAPI passes HTTPExceptions from body reading through."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)
