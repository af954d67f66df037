"""Pairing codes, pairing, and the devices an account owns (nothing here commits).

Wrong pairing codes are counted in the database per source address and per account,
so the limit holds across server processes and restarts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from server.accounts.models import Account
from server.auth import hash_token, new_device_token
from server.db import utcnow
from server.devices.models import Device, PairingCode, PairingFailure
from server.errors import AppError, Conflict, FieldProblem, NotFound, RateLimited, ValidationFailed
from server.settings import Settings

# No 0/O, 1/I/L: a person reads the code off one screen and types it on another.
PAIRING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIRING_CODE_LENGTH = 8
# Where a refused code's owner gets a new one, named in each refusal.
NEW_CODE = "`phoneflow devices pair-code`, the dashboard's Devices page or POST /api/v1/pairing-codes"


class PairingCodeExpired(AppError):
    status_code = 410
    title = "Pairing code expired"


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    serial: str
    model: str
    android_version: str
    name: str | None = None


def normalise_code(code: str) -> str:
    """Upper case, without the spaces and dashes people type between groups."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def create_pairing_code(session: Session, account: Account, settings: Settings) -> tuple[str, datetime]:
    """A fresh single-use code (returned in clear, once) and when it expires."""
    code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))
    now = utcnow()
    expires_at = now + timedelta(seconds=settings.pairing_code_ttl_s)
    session.add(
        PairingCode(account_id=account.id, code_hash=hash_token(code), created_at=now, expires_at=expires_at)
    )
    session.flush()
    return code, expires_at


def _recent_failures(session: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    count, oldest = session.execute(
        select(func.count(), func.min(PairingFailure.created_at)).where(
            PairingFailure.key == key, PairingFailure.created_at > since
        )
    ).one()
    return int(count), oldest


def _check_limit(session: Session, key: str, what: str, settings: Settings) -> None:
    # One check-and-record at a time per key: on PostgreSQL concurrent wrong codes would otherwise
    # all count the same failures and all pass. The lock is held until the request commits (its
    # failure recorded). SQLite runs one writing transaction at a time anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"pairing:{key}"})
    now = utcnow()
    window = timedelta(seconds=settings.pairing_failure_window_s)
    count, oldest = _recent_failures(session, key, now - window)
    if count >= settings.pairing_max_failures:
        wait = window - (now - oldest) if oldest is not None else window
        retry_after = max(1, int(wait.total_seconds()) + 1)
        raise RateLimited(
            f"too many wrong pairing codes from {what}; wait {retry_after} s, then try again "
            "with a fresh code from POST /api/v1/pairing-codes",
            retry_after,
        )


def _record_failure(session: Session, *keys: str) -> None:
    now = utcnow()
    session.add_all(PairingFailure(key=key, created_at=now) for key in keys)
    session.flush()


def pair_device(
    session: Session, code: str, facts: DeviceFacts, source: str, settings: Settings
) -> tuple[Device, str]:
    """Redeem `code` for a new device and its token (returned in clear, once).

    Refusals raise an AppError after recording the failure in the session: the caller
    must commit even when this raises, so the rate limit sees the attempt.
    """
    ip_key = f"ip:{source}"
    _check_limit(session, ip_key, f"address {source}", settings)
    normalised = normalise_code(code)
    row = session.scalars(select(PairingCode).where(PairingCode.code_hash == hash_token(normalised))).first()
    if row is None:
        _record_failure(session, ip_key)
        raise ValidationFailed(
            [
                FieldProblem(
                    "/code",
                    "no such pairing code",
                    f"check the {PAIRING_CODE_LENGTH} characters, or make a new code ({NEW_CODE})",
                )
            ],
            message=f"no such pairing code; check it or make a new one ({NEW_CODE})",
        )
    account_key = f"account:{row.account_id}"
    _check_limit(session, account_key, "attempts on this account's codes", settings)
    now = utcnow()
    if row.used_at is not None:
        # A replay of a code that worked is no guess at the account's codes: counted against the
        # address only, so that replaying one old code cannot lock the whole account out.
        _record_failure(session, ip_key)
        raise Conflict(
            f"this pairing code was already used at {row.used_at.isoformat()}; "
            f"codes are single use — make a new one ({NEW_CODE})"
        )
    if row.expires_at <= now:
        _record_failure(session, ip_key, account_key)
        raise PairingCodeExpired(
            f"this pairing code expired at {row.expires_at.isoformat()}; make a new one "
            f"({NEW_CODE}; codes live {settings.pairing_code_ttl_s // 60} minutes)"
        )
    # The conditional update is what makes the code single use under concurrent redemptions.
    claimed = session.execute(
        update(PairingCode)
        .where(PairingCode.id == row.id, PairingCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        _record_failure(session, ip_key)
        raise Conflict(
            "this pairing code was just used by another device; codes are single use — ask for a new one"
        )
    device, token = create_device(session, row.account_id, facts)
    session.execute(
        update(PairingCode)
        .where(PairingCode.id == row.id)
        .values(device_id=device.id)
        .execution_options(synchronize_session=False)
    )
    return device, token


def create_device(session: Session, account_id: str, facts: DeviceFacts) -> tuple[Device, str]:
    """A device in `account_id` with a fresh token (returned in clear, once)."""
    token = new_device_token()
    device = Device(
        account_id=account_id,
        name=facts.name or f"{facts.model} ({facts.serial})",
        serial=facts.serial,
        model=facts.model,
        android_version=facts.android_version,
        token_hash=hash_token(token),
        last_seen_at=utcnow(),
    )
    session.add(device)
    session.flush()
    return device, token


def list_devices(session: Session, account: Account) -> list[Device]:
    return list(
        session.scalars(
            select(Device).where(Device.account_id == account.id).order_by(Device.created_at, Device.id)
        )
    )


def get_device(session: Session, account: Account, device_id: str) -> Device:
    """One of the account's devices; another account's device is 'not found' too."""
    device = session.scalars(
        select(Device).where(Device.id == device_id, Device.account_id == account.id)
    ).first()
    if device is None:
        raise NotFound(f"no device {device_id} in this account; list them with GET /api/v1/devices")
    return device


def rename_device(session: Session, account: Account, device_id: str, name: str) -> Device:
    device = get_device(session, account, device_id)
    device.name = name
    return device


def set_tags(session: Session, account: Account, device_id: str, tags: list[str]) -> Device:
    """Replace the device's tags (already normalised: lowercase), each once, sorted."""
    device = get_device(session, account, device_id)
    device.tags = sorted(set(tags))
    return device


def devices_with_tag(session: Session, account_id: str, tag: str) -> list[Device]:
    """The account's live (not revoked) devices that carry `tag`, oldest first."""
    devices = session.scalars(
        select(Device)
        .where(Device.account_id == account_id, Device.revoked_at.is_(None))
        .order_by(Device.created_at, Device.id)
    )
    return [device for device in devices if tag in (device.tags or [])]


def revoke_device(session: Session, account: Account, device_id: str) -> Device:
    """Revoke a device: its token stops working at the next request. Revoking twice is harmless."""
    device = get_device(session, account, device_id)
    if device.revoked_at is None:
        device.revoked_at = utcnow()
    return device


def heartbeat(device: Device) -> Device:
    device.last_seen_at = utcnow()
    return device
