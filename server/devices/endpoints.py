"""Pairing codes, pairing, and `/api/v1/devices`: list, read, rename, revoke, heartbeat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from server.auth import BearerCredentials, CurrentAccount, CurrentDevice, current_device, device_token_hash
from server.db import SessionDep, in_one_transaction
from server.denylist.service import effective_entries
from server.devices import service
from server.devices.health import record_heartbeat
from server.devices.schemas import (
    DeviceConfig,
    DeviceRead,
    DeviceTagsIn,
    DeviceUpdate,
    GateIn,
    GateOut,
    Heartbeat,
    HeartbeatIn,
    Paired,
    PairingCodeCreated,
    PairRequest,
)
from server.errors import AppError, FieldProblem, ValidationFailed, problem_response, problem_responses
from server.runs.endpoints import apply_reports
from server.runs.events import get_hub
from server.runs.gate import GateAnswer, announce_step, fast_gate, gate, gate_state
from server.runs.lease import end_lease, grant_lease
from server.runs.service import cancel_requested_run_ids
from server.settings import Settings

router = APIRouter(tags=["devices"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# The step gate first: every phone asks it before every step, and routes are matched in order.
@router.post(
    "/devices/me/runs/{run_id}/gate",
    response_model=GateOut,
    summary="Asked by the bridge before every step: was a cancel accepted, is the run paused, which "
    "denylist is in force",
    responses=problem_responses(404, c404="Not a run of this device"),
)
async def step_gate(
    run_id: str, request: Request, credentials: BearerCredentials, body: GateIn | None = None
) -> JSONResponse:
    """With the step about to start in the body, the run's watchers get it as `run.step` (step in flight);
    with the run's progress in it too (`report`), that is stored as runs.report would, in the same
    transaction: the gate answers after it, and says what became of it (`report`)."""
    if body is not None and body.report is not None and body.report.id.lower() != run_id.lower():
        raise ValidationFailed(
            [
                FieldProblem(
                    "/report/id",
                    f"the report is about run {body.report.id}, but this is the gate of run {run_id}",
                    "send a run's progress with that run's own gate, or with runs.report",
                )
            ]
        )
    global_denylist = _settings(request).global_denylist
    notify = get_hub(request.app).notify

    report = body.report if body is not None else None
    step = (body.seq, body.node_id) if body is not None else None
    lease_s = _settings(request).run_lease_s
    lease_asked = body is not None and body.lease
    token_hash = device_token_hash(credentials)

    def work(session: Session) -> dict[str, Any]:
        state = gate_state(session, token_hash, run_id, report, step) if token_hash is not None else None
        fast = fast_gate(session, state, global_denylist, report, step, notify) if state is not None else None
        if fast is not None:
            out = fast.answer.to_json()
            if fast.carried is not None:
                out["report"] = {"result": fast.carried.result, "reason": fast.carried.reason}
            return _with_lease(session, out, fast.answer, lease_s, lease_asked)
        # The general way: every other case (a 401, a 404, a report the fast path does not take).
        device = current_device(session, credentials)
        carried = None
        if report is not None:
            carried = apply_reports(session, request.app, device, [report], cancels=False)[0]
        answer = gate(session, device, run_id, global_denylist)
        if step is not None:
            announce_step(session, answer, step[0], step[1], notify)
        out = answer.to_json()
        if carried is not None:
            out["report"] = {"result": carried["result"], "reason": carried["reason"]}
        return _with_lease(session, out, answer, lease_s, lease_asked)

    return JSONResponse(await in_one_transaction(request, work))


def _with_lease(
    session: Session, out: dict[str, Any], answer: GateAnswer, lease_s: float, asked: bool
) -> dict[str, Any]:
    """The gate's answer with the lease asked for, when the run may have one (running, no cancel), and
    whether this server grants leases at all (a bridge asks for one only once it has heard so)."""
    out["grantsLease"] = lease_s > 0
    if lease_s <= 0:
        return out
    if answer.cancel_requested or answer.status == "paused":
        end_lease(session, answer.run_id)  # the bridge hears it now: a waiting cancel or pause may answer
    elif asked and answer.status == "running":
        lease_ms = grant_lease(session, answer.run_id, lease_s)
        if lease_ms is not None:
            out["leaseMs"] = lease_ms
    return out


@router.post(
    "/pairing-codes",
    response_model=PairingCodeCreated,
    status_code=status.HTTP_201_CREATED,
    summary="A single-use code that pairs one device (expires in 10 minutes)",
)
def create_pairing_code(request: Request, account: CurrentAccount, session: SessionDep) -> PairingCodeCreated:
    code, expires_at = service.create_pairing_code(session, account, _settings(request))
    return PairingCodeCreated(code=code, expires_at=expires_at)


@router.post(
    "/devices/pair",
    response_model=Paired,
    status_code=status.HTTP_201_CREATED,
    summary="Redeem a pairing code for a device token",
    responses=problem_responses(
        409, 410, 429, c409="The code was already used", c410="The code expired", c422="No such code"
    ),
)
def pair(body: PairRequest, request: Request, session: SessionDep) -> Paired | Response:
    source = request.client.host if request.client else "unknown"
    facts = service.DeviceFacts(
        serial=body.serial, model=body.model, android_version=body.android_version, name=body.name
    )
    try:
        device, token = service.pair_device(session, body.code, facts, source, _settings(request))
    except AppError as refusal:
        # Answer without raising, so the request's transaction commits the failed attempt
        # and the rate limit counts it.
        return problem_response(refusal)
    return Paired(device_id=device.id, token=token)


@router.post(
    "/devices/me/heartbeat",
    response_model=Heartbeat,
    summary="A device says it is alive (updates lastSeenAt) with its bridge's and its phone's health",
)
def heartbeat(
    request: Request, device: CurrentDevice, session: SessionDep, body: HeartbeatIn | None = None
) -> Heartbeat:
    record_heartbeat(
        session,
        device,
        body.bridge.model_dump(by_alias=True) if body is not None and body.bridge is not None else None,
        body.phone.model_dump(by_alias=True) if body is not None and body.phone is not None else None,
        get_hub(request.app).notify,
    )
    assert device.last_seen_at is not None
    effective = effective_entries(session, device.account_id, _settings(request).global_denylist)
    return Heartbeat(
        device_id=device.id,
        last_seen_at=device.last_seen_at,
        cancel_run_ids=cancel_requested_run_ids(session, device.id),
        denylist_version=effective.version,
    )


@router.get(
    "/devices/me/config",
    response_model=DeviceConfig,
    summary="What the bridge must enforce: the effective package denylist (global + account) and its version",
)
def device_config(request: Request, device: CurrentDevice, session: SessionDep) -> DeviceConfig:
    effective = effective_entries(session, device.account_id, _settings(request).global_denylist)
    return DeviceConfig.model_validate({"denylist": effective.to_json()})


@router.get("/devices", response_model=list[DeviceRead], summary="The account's devices")
def list_devices(account: CurrentAccount, session: SessionDep) -> list[DeviceRead]:
    return [DeviceRead.model_validate(d) for d in service.list_devices(session, account)]


@router.get("/devices/{device_id}", response_model=DeviceRead, summary="One device")
def read_device(device_id: str, account: CurrentAccount, session: SessionDep) -> DeviceRead:
    return DeviceRead.model_validate(service.get_device(session, account, device_id))


@router.patch("/devices/{device_id}", response_model=DeviceRead, summary="Rename a device")
def rename_device(
    device_id: str, body: DeviceUpdate, account: CurrentAccount, session: SessionDep
) -> DeviceRead:
    return DeviceRead.model_validate(service.rename_device(session, account, device_id, body.name))


@router.put("/devices/{device_id}/tags", response_model=DeviceRead, summary="Set a device's tags")
def set_device_tags(
    device_id: str, body: DeviceTagsIn, account: CurrentAccount, session: SessionDep
) -> DeviceRead:
    """Replace the device's tags (`store-12`, `android-14`): batches and tag runs choose phones by them."""
    return DeviceRead.model_validate(service.set_tags(session, account, device_id, body.tags))


@router.post(
    "/devices/{device_id}/revoke",
    response_model=DeviceRead,
    summary="Revoke a device: its token stops working at once",
)
def revoke_device(device_id: str, account: CurrentAccount, session: SessionDep) -> DeviceRead:
    return DeviceRead.model_validate(service.revoke_device(session, account, device_id))
