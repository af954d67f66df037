"""Paired devices, the one-time pairing codes that pair them, and failed pairing attempts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, new_id, utcnow

# A bridge heartbeats every few seconds; a device silent for longer than this is offline.
ONLINE_WINDOW = timedelta(seconds=60)
# adb states in which a phone can take runs (`unknown`: the bridge cannot ask adb; older bridges say none).
READY_ADB_STATES = ("device", "unknown")


def is_online(device: Device) -> bool:
    """A heartbeat within `ONLINE_WINDOW`, and the phone not reported away by adb."""
    if device.last_seen_at is None or utcnow() - device.last_seen_at >= ONLINE_WINDOW:
        return False
    state = (device.phone_health or {}).get("adbState")
    return state is None or state in READY_ADB_STATES


class Device(Base):
    """A phone (or emulator) paired to an account; its token's sha256 hash is stored."""

    __tablename__ = "devices"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    android_version: Mapped[str] = mapped_column(String(50))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the device's bridge said of itself in its last heartbeat (worker state, restarts, errors).
    bridge_health: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # What the phone said of itself in the last heartbeat: adb state, battery, charging, screen on,
    # the app in front, the run in hand (`PhoneHealth`).
    phone_health: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # When the device's bridge last asked for commands (GET /devices/me/commands): a bridge that has
    # not asked for a while is not listening, and commands for it are refused at once.
    commands_polled_at: Mapped[datetime | None] = mapped_column(default=None)
    # Labels a person gives the phone (`store-12`, `android-14`): batches and "any free phone with
    # tag X" runs choose phones by them.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")

    @property
    def online(self) -> bool:
        return is_online(self)


class PairingCode(Base):
    """A single-use code an account hands to a device; only its sha256 hash is stored."""

    __tablename__ = "pairing_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    device_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="SET NULL"), default=None
    )


class PairingFailure(Base):
    """One wrong pairing attempt, counted per key (`ip:<address>` or `account:<id>`) for rate limits.

    Kept in the database, not in process memory, so the limit holds across server processes.
    """

    __tablename__ = "pairing_failures"
    __table_args__ = (Index(None, "key", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceCommand(Base):
    """Something a person asked a device's bridge to do now (inspect the screen, click), and its answer.

    Kept in the database, not in a process, so that any server process may take the request, any
    other may hand it to the bridge's long poll, and a third may answer the person waiting for it.
    """

    __tablename__ = "device_commands"
    __table_args__ = (Index(None, "device_id", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(36), ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending -> taken -> done | failed; pending or taken -> expired (nobody answered in time).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(String(4000), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
