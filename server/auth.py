"""Tokens and the request dependencies that turn them into an account or a device.

Account tokens start `pf_acc_`, device tokens `pf_dev_`; both are random
(`secrets.token_urlsafe`), shown once, and stored as sha256 hashes only.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from server.accounts.models import Account, ApiToken
from server.db import SessionDep, utcnow
from server.devices.models import Device
from server.errors import Unauthorized

ACCOUNT_TOKEN_PREFIX = "pf_acc_"
DEVICE_TOKEN_PREFIX = "pf_dev_"
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


def current_account(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    """The account whose token authorises this request; 401 otherwise."""
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
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > _LAST_USED_RESOLUTION:
        api_token.last_used_at = now
    return account


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
