"""Wire shapes of the pairing and device endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from server.runs.schemas import ReportResult, RunReportIn
from server.schemas import ApiModel


class PairingCodeCreated(ApiModel):
    code: str = Field(description="8 characters, single use; shown once.")
    expires_at: datetime


class PairRequest(ApiModel):
    code: str = Field(min_length=1, max_length=64)
    serial: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    android_version: str = Field(min_length=1, max_length=50)
    name: str | None = Field(default=None, min_length=1, max_length=200)


class Paired(ApiModel):
    device_id: str
    token: str = Field(description="The device token (pf_dev_…): shown once, stored only as a hash.")


class BridgeHealth(BaseModel):
    """What a bridge says of its side of a device (unknown fields from newer bridges are ignored)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    worker: str = Field(
        max_length=100,
        description="serving, waiting for the device (it stopped answering), or restarting (the thread died)",
    )
    worker_restarts: int = Field(default=0, ge=0, le=1_000_000_000)
    last_worker_error: str | None = Field(default=None, max_length=4000)
    last_worker_error_at: str | None = Field(default=None, max_length=64)
    device_problem: str | None = Field(default=None, max_length=4000)
    run_in_hand: str | None = Field(default=None, max_length=64)
    uploader_restarts: int = Field(default=0, ge=0, le=1_000_000_000)


class PhoneHealth(BaseModel):
    """What a phone says of itself through its bridge (unknown fields from newer bridges are ignored)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    adb_state: str = Field(
        max_length=40,
        description="What adb lists the phone as: device (ready), offline, unauthorized, ..., gone "
        "(not listed: unplugged), unknown (the bridge cannot ask adb)",
    )
    battery: int | None = Field(default=None, ge=0, le=100, description="Battery level, percent")
    charging: bool | None = Field(default=None, description="On a charger (AC, USB, wireless)")
    screen_on: bool | None = None
    foreground_app: str | None = Field(default=None, max_length=200, description="The package in front")
    run_in_hand: str | None = Field(default=None, max_length=64, description="The run the phone runs now")
    checked_at: str | None = Field(default=None, max_length=64, description="When the bridge asked the phone")


class HeartbeatIn(ApiModel):
    bridge: BridgeHealth | None = Field(
        default=None, description="The bridge's health, shown with the device."
    )
    phone: PhoneHealth | None = Field(default=None, description="The phone's health, shown with the device.")


class DeviceRead(ApiModel):
    id: str
    name: str
    serial: str
    model: str
    android_version: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    bridge_health: dict[str, Any] | None = Field(
        default=None, description="What the device's bridge said of itself in its last heartbeat."
    )
    phone_health: dict[str, Any] | None = Field(
        default=None,
        description="What the phone said of itself in the last heartbeat: adbState, battery, charging, "
        "screenOn, foregroundApp, runInHand, checkedAt",
    )
    online: bool = Field(
        default=False, description="A heartbeat arrived within the last 60 s and adb lists the phone as ready"
    )
    tags: list[str] = Field(default_factory=list, description="Labels that batches and tag runs choose by")


Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"),
]


class DeviceTagsIn(ApiModel):
    """`PUT /api/v1/devices/{id}/tags`: the device's whole set of tags."""

    tags: list[Tag] = Field(
        max_length=20,
        description="Up to 20 tags: lowercase letters, digits, '.', '_', ':' and '-', 64 characters at most",
    )


class DeviceUpdate(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class Heartbeat(ApiModel):
    device_id: str
    last_seen_at: datetime
    # The device's running runs that someone asked to cancel: stop each after its current step.
    cancel_run_ids: list[str] = []
    denylist_version: str = Field(
        description="The effective denylist's version: fetch GET /api/v1/devices/me/config when it changes."
    )


class DenylistOut(ApiModel):
    version: str = Field(description="Changes whenever the global list or the account's entries change.")
    patterns: list[str] = Field(description="Package names and globs, sorted.")


class DeviceConfig(ApiModel):
    denylist: DenylistOut


class GateIn(ApiModel):
    """The step about to start (optional): the run's watchers see it as the step in flight. With the
    run's progress so far (`report`), the gate also stores it as `runs.report` would: one request
    per step instead of a gate and a report."""

    seq: int = Field(ge=1, le=100_000, description="The trace seq the step will write.")
    node_id: str = Field(min_length=1, max_length=200)
    report: RunReportIn | None = Field(
        default=None,
        description="This run as a runs.report run object (its state so far, trace included), judged by "
        "the same rules; its `id` must be the gate's run. Send it only to a server whose gate answered "
        "`acceptsReport: true`.",
    )
    lease: bool = Field(
        default=False,
        description="Ask for a lease (of a server whose gate answered `grantsLease: true`): the answer's "
        "`leaseMs`, during which the bridge may start this run's steps without asking the gate (counted "
        "from before it sent this request).",
    )


class GateReportOut(ApiModel):
    """What the gate did with the report it carried (as a runs.report answer's entry)."""

    result: ReportResult
    reason: str | None = None


class GateOut(ApiModel):
    status: str = Field(description="The run's status on the server.")
    cancel_requested: bool = Field(description="A cancel was accepted: start no further step.")
    paused: bool = Field(
        default=False, description="The run is paused: start no step, hold and ask again until it is not."
    )
    denylist_version: str
    live: bool = Field(
        default=False, description="Someone watches the run live: send frames between steps too."
    )
    accepts_report: bool = Field(
        default=True, description="This server stores a progress report sent with the gate (`report`)."
    )
    report: GateReportOut | None = Field(
        default=None, description="The carried report's result; absent when the gate carried none."
    )
    grants_lease: bool = Field(
        default=False, description="This server grants leases: the bridge may ask for one (`lease`)."
    )
    lease_ms: int | None = Field(
        default=None,
        description="The lease granted (asked with `lease`): for this long the bridge may start the run's "
        "steps without asking the gate; absent when none was granted (ask before the next step).",
    )
