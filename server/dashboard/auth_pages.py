"""Sign in, sign out, the static files, and the dashboard's own event stream."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse

from server.auth import SESSION_COOKIE
from server.dashboard.pages_route import dashboard_router
from server.dashboard.render import page
from server.dashboard.session import (
    SESSION_TTL,
    SIGNIN_CSRF_COOKIE,
    CheckedUser,
    SignInError,
    User,
    check_signin_csrf,
    close_session,
    find_user,
    open_session,
    set_cookie,
)
from server.db import SessionDep
from server.runs.events import (
    MAX_EVENT_ID,
    PING_INTERVAL_S,
    RunEventsResponse,
    event_stream,
    get_hub,
    parse_last_event_id,
)

router = dashboard_router()

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}


def _safe_next(target: str) -> str:
    """Only same-site paths: never redirect a signed-in person to another site."""
    # Browsers read `/\\host` like `//host`: a backslash is refused along with a second slash.
    same_site = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if same_site else "/runs"


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    """The dashboard's front page is the runs table."""
    return RedirectResponse("/runs", status_code=303)


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """The dashboard's CSS and script (only those two kinds, from this folder)."""
    path = STATIC_DIR / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPException(404, detail=f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


def _signin_page(
    request: Request, next_url: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html", None, status_code, signin_csrf=token, next=next_url, error=error)
    set_cookie(response, request, SIGNIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _expired_form_words(request: Request) -> str:
    """Why the sign-in form was refused: it expired, or (its cookie being Secure) it was sent over http."""
    public_url = str(request.app.state.settings.public_url)
    if request.url.scheme != "https" and public_url.lower().startswith("https://"):
        return (
            f"this server's address is {public_url} (its public_url), so its cookies travel over https "
            f"only: sign in at {public_url.rstrip('/')}/signin"
        )
    return "the sign-in form expired: paste your token again"


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, db: SessionDep, next: str = "/runs") -> Response:
    """The sign-in form; a signed-in visitor goes straight on to `next`."""
    if find_user(request, db) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _signin_page(request, _safe_next(next))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    db: SessionDep,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/runs",
) -> Response:
    """Open a session for a pasted account token, then go on to `next`."""
    next_url = _safe_next(next)
    if not check_signin_csrf(request, csrf_token):
        return _signin_page(request, next_url, _expired_form_words(request), 403)
    try:
        cookie, _row = open_session(db, token)
    except SignInError as exc:
        return _signin_page(request, next_url, str(exc), 401)
    response = RedirectResponse(next_url, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=int(SESSION_TTL.total_seconds()))
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(request: Request, db: SessionDep, user: CheckedUser) -> Response:
    """End this session on the server and drop its cookie."""
    close_session(db, user.session_hash)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/dashboard/events")
async def dashboard_events(
    request: Request, user: User, after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None
) -> EventSourceResponse:
    """`run.updated` for the signed-in account, by session cookie (EventSource cannot send headers).

    `after` is the last event id the page was rendered with, so nothing committed between the
    page and the stream is missed; a reconnecting EventSource's `Last-Event-ID` takes over from it.
    """
    resumed = parse_last_event_id(request.headers.get("Last-Event-ID"))
    after_id = resumed if resumed is not None else after
    ping = float(getattr(request.app.state, "sse_ping_s", PING_INTERVAL_S))
    stream = event_stream(get_hub(request.app), user.account.id, after_id, lambda: _signed_in(request), ping)
    return RunEventsResponse(stream, ping=ping, headers={"Cache-Control": "no-store"})


def _signed_in(request: Request) -> bool:
    """Whether the session that opened the dashboard's stream is still signed in (its token unrevoked)."""
    with request.app.state.session_factory() as db:
        return find_user(request, db) is not None
