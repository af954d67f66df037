"""Errors on dashboard pages as pages: a person in a browser never sees a problem+json body.

The API's handlers (server/errors.py) answer `application/problem+json`, which is right for
clients and wrong for a person. Every dashboard router uses `DashboardRoute`, whose handler
turns the errors a page can raise into HTML:

* `SignInRequired` → a redirect to the sign-in page (and back afterwards); for the live
  fragments and the event stream, which a script fetches, a 401 so that the script reloads
  the page instead of pasting the sign-in form into a table;
* `AppError`, `HTTPException`, `RequestValidationError` → `message.html` with the status.

The handler catches inside the request's transaction (FastAPI closes function-scoped
dependencies after the handler returns), so it rolls the session back itself: an error
page never commits a half-made change.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import AppError, NotFound, problems_from_validation

# Set by `session.require_user` on request.state: the request's session and signed-in user.
STATE_DB = "dashboard_db"
STATE_USER = "dashboard_user"

_TITLES = {
    400: "Bad request",
    403: "This form has expired",
    404: "Not found",
    405: "Not allowed",
    409: "Not possible now",
    422: "Check what you entered",
    429: "Too many attempts",
}


SECTIONS = ("runs", "analytics", "devices", "workflows", "integrations", "settings")


class SignInRequired(Exception):
    """Nobody is signed in (or the session ended): go to the sign-in page, then back to `target`."""

    def __init__(self, target: str) -> None:
        super().__init__(f"sign in to see {target}")
        self.target = target


def is_script_request(request: Request) -> bool:
    """True for what live.js fetches (fragments, the event stream): they get status codes, not pages."""
    return (
        request.headers.get("X-Requested-With") == "fetch"
        or "text/event-stream" in request.headers.get("Accept", "")
        or request.url.path.rsplit("/", 1)[-1].startswith("_")
    )


def _back_link(request: Request) -> str:
    # The section the failed request belongs to: `/devices/ID/revoke` → `/devices`.
    section = request.url.path.strip("/").split("/", 1)[0]
    return (
        f"/{section}"
        if section in ("runs", "analytics", "devices", "workflows", "integrations", "settings")
        else "/runs"
    )


def _detail(exc: Exception) -> tuple[int, str, str, dict[str, str]]:
    """(status, title, words for a person, headers) of an error a page raised."""
    if isinstance(exc, NotFound):
        # The services' words end with an API hint ("; list them with GET /api/v1/..."): a person
        # on a page needs the page's version of it.
        what = exc.message.split("; ", 1)[0]
        return 404, _TITLES[404], f"{what}: it may have been removed, or the link is from another account", {}
    if isinstance(exc, AppError):
        return exc.status_code, _TITLES.get(exc.status_code, exc.title), exc.message, exc.headers
    if isinstance(exc, RequestValidationError):
        problems = problems_from_validation(exc.errors())
        words = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems)
        return 422, _TITLES[422], words, {}
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return exc.status_code, _TITLES.get(exc.status_code, "Error"), detail, dict(exc.headers or {})


def error_page(request: Request, exc: Exception) -> Response:
    """The page (or, for a script, the short text) that reports `exc`."""
    # Imported here: render imports session, which imports this module.
    from server.dashboard.render import page

    status, title, detail, headers = _detail(exc)
    if is_script_request(request):
        return PlainTextResponse(detail, status_code=status, headers=headers)
    user = getattr(request.state, STATE_USER, None)
    response = page(
        request, "message.html", user, status, title=title, detail=detail, back=_back_link(request)
    )
    response.headers.update(headers)
    return response


def _sign_in_response(request: Request, exc: SignInRequired) -> Response:
    if is_script_request(request):
        return PlainTextResponse("signed out: reload the page to sign in again", status_code=401)
    return RedirectResponse(f"/signin?next={quote(exc.target, safe='')}", status_code=303)


def _rolled_back_error_page(request: Request, exc: Exception) -> Response:
    db: Session | None = getattr(request.state, STATE_DB, None)
    if db is not None:
        db.rollback()
    return error_page(request, exc)


class DashboardRoute(APIRoute):
    """An APIRoute whose errors are dashboard pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped so that its errors become pages."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            """Run the route; answer the errors a page can raise as pages (or short texts for scripts)."""
            try:
                return await handler(request)
            except SignInRequired as exc:
                return _sign_in_response(request, exc)
            except (AppError, StarletteHTTPException, RequestValidationError) as exc:
                # In a thread: rolling back and rendering (which may reload the user) touch the database.
                return await run_in_threadpool(_rolled_back_error_page, request, exc)

        return handle


def dashboard_router() -> APIRouter:
    """A router for dashboard pages: hidden from the OpenAPI document, errors as pages."""
    return APIRouter(include_in_schema=False, route_class=DashboardRoute)
