"""A lane for ordinary claims past the generic request machinery, as `report_lane.py` is for runs.report.

Every idle phone claims, and what a claim cost the server was much more the input guard, the router,
FastAPI's dependencies and its request and response wrappers than the claim's statements. An ordinary
claim — `POST /api/v1/devices/me/claim`, no query, a bearer device token, and either no body at all
(and no content type) or one `Content-Type: application/json` with a body that the input guard would
pass unparsed and that validates as `ClaimIn` — is answered here with the route's own code
(`answer_claim`).

Everything else goes the usual way, with the body already read handed on: a missing or odd token,
another content type, a query, a body the guard must look into or that does not validate. So every
refusal is the route's own, word for word. The lane sits inside the request-id and body-size
middlewares (the same access log, metrics, request id and 413s); its errors go to the app's own
exception handlers, and what none handles on to the server-error middleware, as from the route.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from interpreter import safe_json
from server.auth import DEVICE_TOKEN_PREFIX
from server.runs.endpoints import answer_claim, router
from server.runs.report_lane import _handler_for, _replay
from server.runs.schemas import ClaimIn

PATH = "/api/v1/devices/me/claim"
_NOT_ORDINARY = object()


class ClaimLane:
    """Answers ordinary claims itself (the module docstring says which); hands every other request to
    `app` as it came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = next(
            r for r in router.routes if isinstance(r, APIRoute) and r.path == "/devices/me/claim"
        )

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
        headers = _ordinary_headers(scope["headers"])
        if headers is None:
            await self.app(scope, receive, send)
            return
        credentials, json_body = headers
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
        claim = _ordinary_body(body, json_body)
        if claim is _NOT_ORDINARY:
            await self.app(scope, _replay(body, None, receive), send)
            return
        scope["route"] = self.route  # the access log's and the metrics' route, as the router sets it
        request = Request(scope, receive, send)
        try:
            response: Response = await answer_claim(
                request, credentials, claim if isinstance(claim, ClaimIn) else None
            )
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise  # the server-error middleware answers 500, as for the route
            response = await handler(request, exc)
        await response(scope, receive, send)


def _ordinary_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[HTTPAuthorizationCredentials, bool] | None:
    """The device token of a request with a bearer device token and either no content type or one JSON
    content type (and whether it is JSON), else None. The credentials are what the route's
    `HTTPBearer` makes of the same header (its first)."""
    content_types = [value for name, value in headers if name == b"content-type"]
    if len(content_types) > 1 or (
        content_types and content_types[0].split(b";", 1)[0].strip().lower() != b"application/json"
    ):
        return None
    authorization = next((value for name, value in headers if name == b"authorization"), None)
    if authorization is None:
        return None
    scheme, token = get_authorization_scheme_param(authorization.decode("latin-1"))
    if scheme.lower() != "bearer" or not token.startswith(DEVICE_TOKEN_PREFIX):
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token), bool(content_types)


def _ordinary_body(body: bytes, json_body: bool) -> ClaimIn | None | object:
    """The claim's body (None: no body, without a content type), when the input guard would pass `body`
    without a look and it validates; else `_NOT_ORDINARY`."""
    if not body:
        return _NOT_ORDINARY if json_body else None
    if not json_body or safe_json.needs_check(body):
        return _NOT_ORDINARY
    try:
        return ClaimIn.model_validate_json(body)
    except ValidationError:
        return _NOT_ORDINARY
