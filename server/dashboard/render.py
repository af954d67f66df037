"""Templates and the small formatting helpers the pages share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from server.dashboard.session import DashboardUser
from server.db import utcnow
from server.errors import AppError, ValidationFailed

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def error_text(exc: AppError) -> str:
    """An error's words for a page: each validation problem with its hint, else the message."""
    if isinstance(exc, ValidationFailed) and exc.errors:
        return "; ".join(f"{e.message} — {e.hint}" if e.hint else e.message for e in exc.errors)
    return exc.message


def duration(ms: int | None) -> str:
    """`840 ms`, `12.3 s`, `4 min 05 s`; a dash when unknown."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes} min {seconds:02d} s"


def when(moment: datetime | str | None) -> str:
    """A short UTC time: `2026-11-23 14:05:09`."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def ago(moment: datetime | str | None) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 d ago`; `never` when None."""
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    seconds = int((utcnow() - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


# Pages hold account data and one-time secrets (a new token, a pairing code): never cached, never
# framed by another site (clickjacking a "Revoke" button), and no address leaks to other sites.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # Scripts and styles only from our own files: an injected <script> or onclick= does not run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

TEMPLATES.env.filters["duration"] = duration
TEMPLATES.env.filters["when"] = when
TEMPLATES.env.filters["ago"] = ago


def page(
    request: Request, name: str, user: DashboardUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a full page (or a fragment: names starting with `_`)."""
    response = TEMPLATES.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": user.csrf_token if user else "", "path": request.url.path, **context},
        status_code=status_code,
    )
    response.headers.update(PAGE_HEADERS)
    return response
