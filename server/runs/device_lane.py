"""What the lanes of the phones' busiest calls share (report_lane.py, claim_lane.py).

A lane answers an ordinary request to one `POST` path past the generic request machinery (the input
guard, the router, FastAPI's dependencies and wrappers) with the route's own code, and hands every
other request to the app as it came, with the body already read replayed. An ordinary request has no
query, a bearer device token and a body that the input guard would pass unread and that validates;
what a body may be (and whether it may be absent) is each lane's (`DeviceLane.parse`). A lane sits
inside the request-id and body-size middlewares (the same access log, metrics, request id and 413s);
its errors go to the app's own exception handlers, and what none handles on to the server-error
middleware, as from the route.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.routing import APIRoute, APIRouter
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interpreter import safe_json
from server.auth import DEVICE_TOKEN_PREFIX

# What `DeviceLane.parse` returns for a request the lane leaves to the route.
NOT_ORDINARY: Any = object()

Model = TypeVar("Model", bound=BaseModel)


class DeviceLane:
    """An ASGI middleware answering ordinary `POST {prefix}{route_path}` requests itself (see the module
    docstring); a subclass says what an ordinary body is (`parse`) and how it is answered (`answer`)."""

    def __init__(self, app: ASGIApp, router: APIRouter, route_path: str, prefix: str = "/api/v1") -> None:
        self.app = app
        self.path = prefix + route_path
        self.route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == route_path)

    def parse(self, body: bytes, json_body: bool) -> Any:
        """The request's parsed body (`json_body`: it came with a JSON content type), or `NOT_ORDINARY`."""
        raise NotImplementedError

    async def answer(
        self, request: Request, credentials: HTTPAuthorizationCredentials, parsed: Any
    ) -> Response:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
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
        parsed = self.parse(body, json_body)
        if parsed is NOT_ORDINARY:
            await self.app(scope, _replay(body, None, receive), send)
            return
        scope["route"] = self.route  # the access log's and the metrics' route, as the router sets it
        request = Request(scope, receive, send)
        try:
            response = await self.answer(request, credentials, parsed)
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise  # the server-error middleware answers 500, as for the route
            response = await handler(request, exc)
        await response(scope, receive, send)


def validated_json(model: type[Model], body: bytes) -> Model | Any:
    """`body` as `model`, when the input guard would pass it without a look and it validates; else
    `NOT_ORDINARY` (the route then answers, with its own words for what is wrong)."""
    if not body or safe_json.needs_check(body):
        return NOT_ORDINARY
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return NOT_ORDINARY


def _ordinary_headers(headers: list[tuple[bytes, bytes]]) -> tuple[HTTPAuthorizationCredentials, bool] | None:
    """The device token of a request with a bearer device token and at most one content type, JSON, (and
    whether it has one), else None. The credentials are what the route's `HTTPBearer` makes of the same
    header (its first)."""
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
