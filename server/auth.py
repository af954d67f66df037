"""Tokens and the request dependencies that turn them into an account or a device.

Account tokens start `pf_acc_`, device tokens `pf_dev_`; both are random
(`secrets.token_urlsafe`), shown once, and stored as sha256 hashes only.

The account endpoints also take the dashboard's session cookie, so that the builder (a
script on a dashboard page) calls the same `/api/v1` as any client. A request that
authenticates by the cookie must carry the session's CSRF token in `X-CSRF-Token`: a
page of another site can make the browser send the cookie, but not that header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.accounts.models import Account, ApiToken
from server.dashboard.models import DashboardSession
from server.db import SessionDep, utcnow
from server.devices.models import Device
from server.errors import Forbidden, Unauthorized

ACCOUNT_TOKEN_PREFIX = "pf_acc_"
DEVICE_TOKEN_PREFIX = "pf_dev_"
# The dashboard's session cookie, and the header that carries its CSRF token to the API.
SESSION_COOKIE = "pf_session"
CSRF_HEADER = "X-CSRF-Token"
# Writing last_used_at on every request would make every read a write; once a minute is enough.
_LAST_USED_RESOLUTION = timedelta(minutes=1)

_bearer = HTTPBearer(auto_error=False, description="An account token (pf_acc_…) or a device token (pf_dev_…)")

HOW_TO_GET_ACCOUNT_TOKEN = (
    "send 'Authorization: Bearer pf_acc_…' with an account token; "
    "`phoneflow admin create-account EMAIL` prints the first one, "
    "and POST /api/v1/account/tokens makes more"
)
HOW_TO_GET_DEVICE_TOKEN = (
    "send 'Authorization: Bearer pf_dev_…' with a device token; pair the device with "
    "POST /api/v1/devices/pair using a code from POST /api/v1/pairing-codes"
)


def hash_token(token: str) -> str:
    """The stored form of a token or pairing code."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_account_token() -> str:
    return ACCOUNT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_device_token() -> str:
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _bearer_token(credentials: HTTPAuthorizationCredentials | None, how_to: str) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(f"no token given: {how_to}")
    return credentials.credentials.strip()


def _session_account(session: SessionDep, cookie: str, csrf_token: str) -> Account:
    """The account of a dashboard session cookie, checked with the CSRF header."""
    row = session.execute(
        select(DashboardSession, Account, ApiToken)
        .join(Account, Account.id == DashboardSession.account_id)
        .join(ApiToken, ApiToken.id == DashboardSession.api_token_id)
        .where(DashboardSession.id_hash == hash_token(cookie))
    ).first()
    if row is None or row[0].expires_at < utcnow() or row[2].revoked_at is not None:
        raise Unauthorized(f"the dashboard session has ended: sign in again, or {HOW_TO_GET_ACCOUNT_TOKEN}")
    if not csrf_token or not hmac.compare_digest(csrf_token, row[0].csrf_token):
        raise Forbidden(
            f"a request signed in by the dashboard's cookie must send the page's CSRF token in the "
            f"{CSRF_HEADER} header (reload the page if it is stale); scripts send a token instead: "
            f"{HOW_TO_GET_ACCOUNT_TOKEN}"
        )
    account: Account = row[1]
    return account


def current_account(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    """The account whose token (or dashboard session) authorises this request; 401 otherwise."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if credentials is None and cookie:
        return _session_account(session, cookie, request.headers.get(CSRF_HEADER, ""))
    token = _bearer_token(credentials, HOW_TO_GET_ACCOUNT_TOKEN)
    if token.startswith(DEVICE_TOKEN_PREFIX):
        raise Unauthorized(
            f"this endpoint needs an account token, not a device token: {HOW_TO_GET_ACCOUNT_TOKEN}"
        )
    if not token.startswith(ACCOUNT_TOKEN_PREFIX):
        raise Unauthorized(f"that is not a phoneflow account token: {HOW_TO_GET_ACCOUNT_TOKEN}")
    row = session.execute(
        select(ApiToken, Account)
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthorized(f"unknown account token: {HOW_TO_GET_ACCOUNT_TOKEN}")
    api_token, account = row
    if api_token.revoked_at is not None:
        raise Unauthorized(f"this account token was revoked: {HOW_TO_GET_ACCOUNT_TOKEN}")
    request.state.api_token = (api_token.id, api_token.name)
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > _LAST_USED_RESOLUTION:
        api_token.last_used_at = now
    return account


def caller_name(request: Request, account: Account) -> str:
    """Who asked, as a run's `triggeredBy` keeps it: `token:<id> (<name>)` for a request signed with an
    API token (its id and name, never the token), the account's email for the dashboard's session."""
    token = getattr(request.state, "api_token", None)
    if token is None:
        return account.email
    token_id, name = token
    return f"token:{token_id} ({name})"[:320]


def device_token_hash(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The stored form of the device token a request carries, unchecked (None when it carries none).

    For the hot paths that find the device by this hash inside their own statement, together with
    `revoked_at IS NULL`: a revoked token then stops working at once, in every process. When their
    statement finds nothing, they ask `current_device`, which says what is wrong (401)."""
    if credentials is None or not credentials.credentials:
        return None
    token = credentials.credentials.strip()
    return hash_token(token) if token.startswith(DEVICE_TOKEN_PREFIX) else None


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """The few columns of a paired, unrevoked device that the claim and the wake-up poll read."""

    id: str
    account_id: str
    tags: list[str]


_DEVICE_BY_TOKEN = select(
    Device.__table__.c.id, Device.__table__.c.account_id, Device.__table__.c.tags
).where(Device.__table__.c.token_hash == bindparam("token_hash"), Device.__table__.c.revoked_at.is_(None))


def device_ref(session: Session, credentials: HTTPAuthorizationCredentials | None) -> DeviceRef:
    """`current_device` for a path that only reads the device: one Core statement (its id, account and
    tags, unrevoked) instead of loading the ORM object; the same 401s when the token does not do."""
    token_hash = device_token_hash(credentials)
    row = (
        session.connection().execute(_DEVICE_BY_TOKEN, {"token_hash": token_hash}).first()
        if token_hash is not None
        else None
    )
    if row is None:
        device = current_device(session, credentials)  # raises the 401 that says what is wrong
        return DeviceRef(device.id, device.account_id, list(device.tags or ()))
    return DeviceRef(row.id, row.account_id, list(row.tags or ()))


def current_device(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Device:
    """The paired, unrevoked device whose token authorises this request; 401 otherwise."""
    token = _bearer_token(credentials, HOW_TO_GET_DEVICE_TOKEN)
    if token.startswith(ACCOUNT_TOKEN_PREFIX):
        raise Unauthorized(
            f"this endpoint needs a device token, not an account token: {HOW_TO_GET_DEVICE_TOKEN}"
        )
    if not token.startswith(DEVICE_TOKEN_PREFIX):
        raise Unauthorized(f"that is not a phoneflow device token: {HOW_TO_GET_DEVICE_TOKEN}")
    device = session.scalars(select(Device).where(Device.token_hash == hash_token(token))).first()
    if device is None:
        raise Unauthorized(f"unknown device token: {HOW_TO_GET_DEVICE_TOKEN}")
    if device.revoked_at is not None:
        raise Unauthorized(
            f"this device was revoked at {device.revoked_at.isoformat()}; "
            f"pair it again to get a new token: {HOW_TO_GET_DEVICE_TOKEN}"
        )
    return device


CurrentAccount = Annotated[Account, Depends(current_account)]
CurrentDevice = Annotated[Device, Depends(current_device)]
# The bearer token alone, read on the event loop: an `async def` endpoint passes it to `current_device`
# inside its one worker-thread transaction (`server.db.in_one_transaction`).
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
