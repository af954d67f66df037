"""Signing in to the dashboard, the session cookie, and CSRF protection.

A person signs in by pasting an account API token. The server then keeps a session
row and sets a random cookie (`HttpOnly`, `SameSite=Lax`, `Secure` over https or when the
server's `public_url` is https) that
names it; only the cookie's sha256 is stored. Every form that changes something
carries the session's CSRF token (synchronizer token pattern), checked on each POST.
The sign-in form itself, made before any session exists, uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.accounts.models import Account, ApiToken
from server.auth import ACCOUNT_TOKEN_PREFIX, SESSION_COOKIE, hash_token
from server.dashboard.models import DashboardSession
from server.dashboard.pages_route import STATE_DB, STATE_USER, SignInRequired, is_script_request
from server.db import SessionDep, utcnow

SIGNIN_CSRF_COOKIE = "pf_signin_csrf"
SESSION_TTL = timedelta(days=7)


class SignInError(Exception):
    """The pasted token cannot open a session; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DashboardUser:
    """The signed-in account of a request, with its session's CSRF token."""

    account: Account
    csrf_token: str
    session_hash: str
    api_token_id: str


def _is_https(request: Request) -> bool:
    """Whether browsers reach this dashboard over https: the request came so, or the server's
    `public_url` says so. Behind a proxy that ends TLS and is not one uvicorn trusts with
    `X-Forwarded-Proto` (--forwarded-allow-ips), the request itself looks like plain http; the
    cookie must still never travel over plain http."""
    if request.url.scheme == "https":
        return True
    settings = getattr(request.app.state, "settings", None)
    return settings is not None and str(settings.public_url).lower().startswith("https://")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    """Set a dashboard cookie: HttpOnly, SameSite=Lax, Secure over https (or a `public_url` of https)."""
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=_is_https(request), path="/"
    )


def open_session(db: Session, token: str) -> tuple[str, DashboardSession]:
    """Check an account token and open a session for it: (cookie value, session row)."""
    token = token.strip()
    if not token:
        raise SignInError("paste an account API token (it starts with pf_acc_)")
    if not token.startswith(ACCOUNT_TOKEN_PREFIX):
        raise SignInError(
            "that is not an account token: account tokens start with pf_acc_ "
            "(`phoneflow admin create-account EMAIL` prints one)"
        )
    api_token = db.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if api_token is None:
        raise SignInError("unknown token: check that you pasted all of it, or create a new one")
    if api_token.revoked_at is not None:
        raise SignInError("this token was revoked: sign in with another token of the account")
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    row = DashboardSession(
        id_hash=hash_token(cookie),
        account_id=api_token.account_id,
        api_token_id=api_token.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    db.add(row)
    # Expired sessions of the account go when a new one opens: the table cannot grow without bound.
    db.execute(
        delete(DashboardSession).where(
            DashboardSession.account_id == api_token.account_id, DashboardSession.expires_at < now
        )
    )
    return cookie, row


def close_session(db: Session, session_hash: str) -> None:
    """Delete a session row: its cookie opens nothing any more."""
    db.execute(delete(DashboardSession).where(DashboardSession.id_hash == session_hash))


def find_user(request: Request, db: Session) -> DashboardUser | None:
    """The signed-in user of this request, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    row = db.execute(
        select(DashboardSession, Account, ApiToken)
        .join(Account, Account.id == DashboardSession.account_id)
        .join(ApiToken, ApiToken.id == DashboardSession.api_token_id)
        .where(DashboardSession.id_hash == hash_token(cookie))
    ).first()
    if row is None:
        return None
    dashboard_session, account, api_token = row
    if dashboard_session.expires_at < utcnow() or api_token.revoked_at is not None:
        return None
    return DashboardUser(
        account=account,
        csrf_token=dashboard_session.csrf_token,
        session_hash=dashboard_session.id_hash,
        api_token_id=api_token.id,
    )


def require_user(request: Request, db: SessionDep) -> DashboardUser:
    """The signed-in user; anyone else is sent to the sign-in page (and back afterwards)."""
    # For DashboardRoute's error pages: roll this session back, show who is signed in.
    setattr(request.state, STATE_DB, db)
    user = find_user(request, db)
    if user is None:
        # A fragment's own path is no page to come back to: after signing in, go to the runs.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired("/runs" if is_script_request(request) else target)
    setattr(request.state, STATE_USER, user)
    return user


def check_csrf(
    user: Annotated[DashboardUser, Depends(require_user)], csrf_token: Annotated[str, Form()] = ""
) -> DashboardUser:
    """The signed-in user, after checking the form's CSRF token against the session's."""
    if not csrf_token or not hmac.compare_digest(csrf_token, user.csrf_token):
        raise HTTPException(
            status_code=403,
            detail="this form is stale or did not come from the dashboard: reload the page and try again",
        )
    return user


def check_signin_csrf(request: Request, form_value: str) -> bool:
    """The sign-in form's double-submit check: the form's token equals its cookie."""
    cookie = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    return bool(cookie) and bool(form_value) and hmac.compare_digest(cookie, form_value)


User = Annotated[DashboardUser, Depends(require_user)]
CheckedUser = Annotated[DashboardUser, Depends(check_csrf)]
