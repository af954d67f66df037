"""The device command channel over HTTP, and the screen inspector's reading of a hierarchy.

Account side: `POST /devices/{id}/commands` asks the device's bridge (409 at once when the bridge
does not run), `GET /devices/{id}/commands/{commandId}?wait=N` waits up to N s for the answer.
Device side: `GET /devices/me/commands?wait=N` is the bridge's long poll, `POST
/devices/me/commands/{commandId}/result` its answer.

The two waits are async and hold no database session while they wait: each look into the
database is its own short transaction (SQLite's write lock, PostgreSQL's connections stay free).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from interpreter.hierarchy import HierarchyError, from_android_xml
from interpreter.inspection import inspect_hierarchy
from server.auth import CurrentAccount, CurrentDevice, _bearer, current_account, current_device
from server.db import SessionDep, session_factory_from, utcnow
from server.devices import commands
from server.devices.command_schemas import (
    BridgeCommand,
    BridgeCommands,
    CommandAnswer,
    CommandCreate,
    CommandRead,
    HierarchyIn,
)
from server.devices.models import DeviceCommand
from server.errors import FieldProblem, ValidationFailed, problem_responses
from server.settings import Settings
from server.stopping import server_stopping

router = APIRouter(tags=["devices"])

T = TypeVar("T")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
MAX_WAIT_S = 30.0


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _inspection(command: DeviceCommand) -> dict[str, Any] | None:
    hierarchy = (command.result or {}).get("hierarchy") if command.status == "done" else None
    if not isinstance(hierarchy, str) or not hierarchy:
        return None
    try:
        return inspect_hierarchy(from_android_xml(hierarchy))
    except HierarchyError as exc:
        return {"error": str(exc), "screen": None, "elements": []}


def _read(command: DeviceCommand) -> CommandRead:
    read = CommandRead.model_validate(command)
    read.inspection = _inspection(command)
    return read


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """`work(session)` in a short transaction of its own, in a worker thread."""
    factory = session_factory_from(request)

    def run() -> T:
        with factory.begin() as session:
            return work(session)

    return await run_in_threadpool(run)


async def _wait(request: Request, key: str, wait_s: float, look: Callable[[], Any]) -> None:
    """Wait up to `wait_s` for a wakeup of `key` or for `look()` (a database look) to say done."""
    deadline = time.monotonic() + wait_s
    interval = _settings(request).command_poll_interval_s
    with commands.WAKEUPS.listen(key) as woken:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or server_stopping(request.app):
                return
            try:
                await asyncio.wait_for(woken.wait(), timeout=min(interval, remaining))
            except TimeoutError:
                pass
            woken.clear()
            if await look():
                return
            if await request.is_disconnected():
                return


@router.post(
    "/devices/{device_id}/commands",
    response_model=CommandRead,
    status_code=status.HTTP_201_CREATED,
    summary="Ask the device's bridge to inspect the screen or click (answered through GET …/commands/{id})",
    responses=problem_responses(409, c409="The device's bridge is not running, or the device was revoked"),
)
def create_command(
    device_id: str, body: CommandCreate, request: Request, account: CurrentAccount, session: SessionDep
) -> CommandRead:
    command = commands.create_command(
        session, account, device_id, body.kind, body.params, _settings(request), utcnow()
    )
    return _read(command)


@router.get(
    "/devices/{device_id}/commands/{command_id}",
    response_model=CommandRead,
    summary="One command; with wait=N, answers when it is done, failed or expired, or after N seconds",
)
async def read_command(
    device_id: str,
    command_id: str,
    request: Request,
    credentials: Credentials,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the answer")] = 0,
) -> CommandRead:
    def look(session: Session) -> CommandRead:
        account = current_account(request, session, credentials)
        return _read(commands.read_command(session, account, device_id, command_id, utcnow()))

    answer = await _in_transaction(request, look)
    if wait <= 0 or answer.status not in ("pending", "taken"):
        return answer

    async def again() -> bool:
        nonlocal answer
        answer = await _in_transaction(request, look)
        return answer.status not in ("pending", "taken")

    await _wait(request, commands.command_key(answer.id), min(wait, MAX_WAIT_S), again)
    return answer


@router.get(
    "/devices/me/commands",
    response_model=BridgeCommands,
    summary="The bridge's long poll: commands for this device, waiting up to wait=N seconds for one",
)
async def next_commands(
    request: Request,
    credentials: Credentials,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for a command")] = 0,
) -> BridgeCommands:
    device_id = ""

    def take(session: Session) -> list[BridgeCommand]:
        nonlocal device_id
        device = current_device(session, credentials)
        first = not device_id
        device_id = device.id
        taken = commands.take_commands(session, device, utcnow(), touch=first)
        return [BridgeCommand.model_validate(c) for c in taken]

    found = await _in_transaction(request, take)
    if found or wait <= 0:
        return BridgeCommands(commands=found)

    async def again() -> bool:
        nonlocal found
        found = await _in_transaction(request, take)
        return bool(found)

    await _wait(request, commands.device_key(device_id), min(wait, MAX_WAIT_S), again)
    return BridgeCommands(commands=found)


@router.post(
    "/devices/me/commands/{command_id}/result",
    response_model=CommandRead,
    summary="The bridge's answer to one command (the same answer again is accepted)",
    responses=problem_responses(409, c409="The command expired before the answer came"),
)
def command_result(
    command_id: str, body: CommandAnswer, device: CurrentDevice, session: SessionDep
) -> CommandRead:
    command = commands.finish_command(
        session, device, command_id, ok=body.ok, result=body.result, error=body.error, now=utcnow()
    )
    return CommandRead.model_validate(command)


@router.post(
    "/inspect/hierarchy",
    summary="The elements of a window hierarchy with the selectors that find each (the screen inspector)",
)
def inspect(body: HierarchyIn, account: CurrentAccount) -> dict[str, Any]:
    try:
        return inspect_hierarchy(from_android_xml(body.hierarchy))
    except HierarchyError as exc:
        problem = FieldProblem("/hierarchy", str(exc), "send the XML uiautomator dumps")
        raise ValidationFailed([problem]) from None
