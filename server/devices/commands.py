"""The server → bridge command channel: a person's request to a device's bridge, and its answer.

A command lives in the database (`device_commands`), so any number of server processes share it:
the process that takes the browser's request stores it; whichever process holds the bridge's long
poll (`GET /devices/me/commands?wait=N`) hands it over (a conditional UPDATE, so one bridge call
takes it once); the bridge posts the answer to any process; the browser's wait, on any process,
sees it. Within one process a new command or answer wakes the waiting long polls at once
(`WAKEUPS`); across processes they find it at their next look into the database
(`command_poll_interval_s`).

A device whose bridge has not asked for commands within `bridge_listening_within_s` is not
listening: a command for it is refused at once with what to do, instead of waiting to expire.
Nothing here commits (the request's transaction does).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.accounts.models import Account
from server.db import after_commit
from server.devices.models import Device, DeviceCommand
from server.errors import AppError, Conflict, NotFound
from server.settings import Settings

COMMAND_KINDS = ("inspect", "click")
# Commands handed to one bridge call at most (a person makes one at a time; a few may queue).
TAKE_LIMIT = 10


class BridgeNotListening(AppError):
    status_code = 409
    title = "The device's bridge is not running"


class CommandExpired(AppError):
    status_code = 409
    title = "The command expired"


class Wakeups:
    """Wakes a process's waiting long polls (asyncio) when a thread of the same process says so."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextmanager
    def listen(self, key: str) -> Iterator[asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(key, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiting = self._waiting.get(key)
                if waiting is not None:
                    waiting.discard(entry)
                    if not waiting:
                        del self._waiting[key]

    def wake_all(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake every poll waiting in `loop` (its server stops: they answer now, not at their end)."""
        with self._lock:
            entries = [entry for waiting in self._waiting.values() for entry in waiting if entry[0] is loop]
        for _, event in entries:
            event.set()

    def notify(self, key: str) -> None:
        with self._lock:
            entries = list(self._waiting.get(key, ()))
        for loop, event in entries:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop closed (its app stopped): nobody waits there any more
                pass


WAKEUPS = Wakeups()


def device_key(device_id: str) -> str:
    return f"device:{device_id}"


def command_key(command_id: str) -> str:
    return f"command:{command_id}"


def _device_of(session: Session, account: Account, device_id: str) -> Device:
    device = session.scalars(
        select(Device).where(Device.id == device_id.lower(), Device.account_id == account.id)
    ).first()
    if device is None:
        raise NotFound(f"no device {device_id} in this account: list them with GET /api/v1/devices")
    return device


def not_listening_message(device: Device, now: datetime, settings: Settings) -> str | None:
    """Why the device's bridge cannot take a command now, or None when it listens."""
    if device.revoked_at is not None:
        return f"device {device.name!r} was revoked: pair it again to inspect it"
    polled = device.commands_polled_at
    if polled is not None and now - polled <= timedelta(seconds=settings.bridge_listening_within_s):
        return None
    since = (
        "has never asked for commands"
        if polled is None
        else f"last asked for commands at {polled:%Y-%m-%d %H:%M:%S} UTC"
    )
    return (
        f"the bridge of device {device.name!r} is not running (it {since}): start it beside the phone "
        f"with `phoneflow bridge run --serial {device.serial}` (a bridge older than the server cannot "
        "take commands: update it), then try again"
    )


def create_command(
    session: Session,
    account: Account,
    device_id: str,
    kind: str,
    params: dict[str, Any],
    settings: Settings,
    now: datetime,
) -> DeviceCommand:
    """Store a command for the device's bridge; `BridgeNotListening` when its bridge does not run."""
    device = _device_of(session, account, device_id)
    problem = not_listening_message(device, now, settings)
    if problem is not None:
        raise BridgeNotListening(problem)
    command = DeviceCommand(
        account_id=account.id,
        device_id=device.id,
        kind=kind,
        params=params,
        status="pending",
        created_at=now,
        expires_at=now + timedelta(seconds=settings.bridge_command_timeout_s),
    )
    session.add(command)
    session.flush()
    after_commit(session, lambda: WAKEUPS.notify(device_key(device.id)))
    return command


def _expire(command: DeviceCommand, now: datetime, device_name: str) -> None:
    timeout_s = round((command.expires_at - command.created_at).total_seconds())
    if command.status == "pending":
        command.error = (
            f"the bridge of device {device_name!r} did not take the command within {timeout_s} s: it may "
            "have stopped or lost the server; check that `phoneflow bridge run` runs beside the phone, "
            "then try again"
        )
    else:
        command.error = (
            f"the bridge of device {device_name!r} took the command but did not answer within {timeout_s} s: "
            "the phone may be slow or stuck; try again, and restart the bridge if it goes on"
        )
    command.status = "expired"
    command.finished_at = now


def read_command(
    session: Session, account: Account, device_id: str, command_id: str, now: datetime
) -> DeviceCommand:
    """One command of the account's device; one nobody answered in time reads as `expired`."""
    device = _device_of(session, account, device_id)
    command = session.scalars(
        select(DeviceCommand).where(
            DeviceCommand.id == command_id.lower(), DeviceCommand.device_id == device.id
        )
    ).first()
    if command is None:
        raise NotFound(f"device {device_id} has no command {command_id}")
    if command.status in ("pending", "taken") and command.expires_at <= now:
        _expire(command, now, device.name)
    return command


def take_commands(
    session: Session, device: Device, now: datetime, *, touch: bool = True
) -> list[DeviceCommand]:
    """The device's pending commands, now taken by this call (oldest first); with `touch`, notes
    that its bridge listens (once per long poll is enough: a poll lasts at most 30 s)."""
    if touch:
        device.commands_polled_at = now
    pending = session.scalars(
        select(DeviceCommand)
        .where(DeviceCommand.device_id == device.id, DeviceCommand.status == "pending")
        .order_by(DeviceCommand.created_at)
        .limit(TAKE_LIMIT)
    ).all()
    taken: list[DeviceCommand] = []
    for command in pending:
        if command.expires_at <= now:
            _expire(command, now, device.name)
            continue
        # Conditional: of two bridge calls (on two server processes) only one takes it.
        moved = session.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == command.id, DeviceCommand.status == "pending")
            .values(status="taken", taken_at=now)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(command)
            taken.append(command)
    return taken


def finish_command(
    session: Session,
    device: Device,
    command_id: str,
    *,
    ok: bool,
    result: dict[str, Any] | None,
    error: str | None,
    now: datetime,
) -> DeviceCommand:
    """Store the bridge's answer; the same answer again is accepted, one past the deadline is refused."""
    command = session.scalars(
        select(DeviceCommand).where(
            DeviceCommand.id == command_id.lower(), DeviceCommand.device_id == device.id
        )
    ).first()
    if command is None:
        raise NotFound(f"this device has no command {command_id}")
    if command.status in ("done", "failed"):
        return command
    if command.status == "expired" or command.expires_at <= now:
        if command.status != "expired":
            _expire(command, now, device.name)
        raise CommandExpired(
            f"command {command.id} expired at {command.expires_at:%H:%M:%S} UTC before this answer came: "
            "the person asking has been told; nothing more to do"
        )
    if ok and result is None:
        raise Conflict("an answer with ok=true needs a result")
    command.status = "done" if ok else "failed"
    command.result = result if ok else None
    command.error = None if ok else (error or "the bridge could not do it and said no more")
    command.finished_at = now
    if command.taken_at is None:
        command.taken_at = now
    after_commit(session, lambda: WAKEUPS.notify(command_key(command.id)))
    return command
