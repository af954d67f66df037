"""The device of a runs.report request, found together with whether its account has webhooks."""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from server.auth import DeviceRef, device_ref, device_token_hash
from server.devices.models import Device
from server.runs.lone_report import remember_device
from server.webhooks.service import has_endpoints, note_without_endpoints

_DEVICES = Device.__table__.c
_DEVICE_BY_TOKEN = select(
    _DEVICES.id, _DEVICES.account_id, _DEVICES.tags, has_endpoints(_DEVICES.account_id).label("webhooks")
).where(_DEVICES.token_hash == bindparam("token_hash"), _DEVICES.revoked_at.is_(None))
_PG_DEVICE_BY_TOKEN = str(_DEVICE_BY_TOKEN.compile(dialect=postgresql_psycopg.dialect()))  # type: ignore[no-untyped-call]


def reporting_device(session: Session, credentials: HTTPAuthorizationCredentials | None) -> DeviceRef:
    """`device_ref` for runs.report: in the same statement, whether the account has an enabled webhook
    endpoint. Most have none, and then the runs this report ends need no webhook query."""
    token_hash = device_token_hash(credentials)
    row: Any = None
    if token_hash is not None:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # Every phone request asks this: its SQL, compiled once, goes to the driver as is.
            driver = connection.connection.driver_connection
            row = driver.execute(_PG_DEVICE_BY_TOKEN, {"token_hash": token_hash}).fetchone()  # type: ignore[union-attr]
        else:
            row = connection.execute(_DEVICE_BY_TOKEN, {"token_hash": token_hash}).first()
    if row is None:
        return device_ref(session, credentials)  # the 401 that says what is wrong
    device_id, account_id, tags, webhooks = row
    if token_hash is not None and connection.dialect.name == "postgresql":
        remember_device(token_hash, device_id, account_id)  # this process's next report may go alone
    if not webhooks:
        note_without_endpoints(session, account_id)
    return DeviceRef(device_id, account_id, list(tags or ()))
