"""Runs a workflow on the simulator: the same engine, a `SimulatedDevice`, a virtual clock.

`action.http` steps do not leave the server by default (that would let anyone make the
server call any address): they get a canned `200 {}` answer, and the result says so. With
`simulate_live_http` they do, to the addresses webhooks may reach (`server.outgoing`: never
link-local, loopback and private ones only with `webhook_allow_private_targets`).
With `screens`, every trace event also gets the simulated phone's screen before and after it
(`interpreter.screen_recorder`): ids into one `images` map, each distinct screen once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from interpreter.appmodel import AppModel, sample_apps
from interpreter.approvals import ScenarioApprovals
from interpreter.clock import VirtualClock
from interpreter.denylist import Denylist
from interpreter.engine import run_workflow
from interpreter.errors import AppModelError, WorkflowError
from interpreter.screen_recorder import ImageFormat, ScreenRecorder
from interpreter.simulator import SimulatedDevice
from server.errors import FieldProblem, ValidationFailed
from server.outgoing import GuardedTransport

SIMULATED_HTTP_HEADER = "X-Phoneflow-Simulated"


def _canned_http(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={}, headers={SIMULATED_HTTP_HEADER: "true"})


def load_apps(apps: dict[str, Any] | None) -> AppModel:
    """The given app model, or the sample apps; 422 at /apps when it is not valid."""
    if apps is None:
        return sample_apps()
    try:
        return AppModel.from_dict(apps)
    except AppModelError as exc:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/apps", str(exc), "send an app model like golden_traces/*/apps.json, or leave apps out"
                )
            ]
        ) from None


def load_scenario(scenario: dict[str, Any] | None) -> ScenarioApprovals:
    try:
        return ScenarioApprovals.from_json(scenario, source="scenario")
    except WorkflowError as exc:
        raise ValidationFailed(
            [
                FieldProblem(
                    "/scenario", str(exc), 'write {"approvals": {"NODE_ID": {"decision": "approved"}}}'
                )
            ]
        ) from None


@dataclass(frozen=True, slots=True)
class ScreenOptions:
    """The pictures wanted: `width` in pixels (the phone's 1080 at most) and the image format."""

    width: int
    image_format: ImageFormat


def simulate(
    definition: dict[str, Any],
    *,
    inputs: dict[str, Any],
    apps: dict[str, Any] | None,
    scenario: dict[str, Any] | None,
    denylist: Denylist,
    live_http: bool = False,
    allow_private: bool = False,
    screens: ScreenOptions | None = None,
) -> dict[str, Any]:
    """The run's JSON (the run fields the engine knows) after simulating `definition`.

    With `screens`: each trace event has `screens` `{before, after, actedOn}` and the result
    `images` (id -> picture as a data URI) and `screenSize` (the phone's pixels, which
    `actedOn.bounds` are in).
    """
    model = load_apps(apps)
    approvals = load_scenario(scenario)
    clock = VirtualClock()
    device = SimulatedDevice(model, clock)
    recorder = None
    if screens is not None:
        # The modelled phone, not the device: looking at it must cost the run no time.
        recorder = ScreenRecorder(device.state, clock, width=screens.width, image_format=screens.image_format)
    transport: httpx.BaseTransport = (
        GuardedTransport(allow_private) if live_http else httpx.MockTransport(_canned_http)
    )
    with httpx.Client(transport=transport, timeout=10.0, follow_redirects=False) as http:
        result = run_workflow(
            definition,
            device,
            inputs=inputs,
            clock=clock,
            denylist=denylist,
            approvals=approvals,
            http=http,
            observer=recorder,
        )
    data = {**result.to_json(), "httpSimulated": not live_http}
    if recorder is not None:
        _attach_screens(data, recorder)
    return data


def _attach_screens(data: dict[str, Any], recorder: ScreenRecorder) -> None:
    by_seq = {step.seq: step for step in recorder.steps}
    for event in data["trace"]:
        step = by_seq.get(event["seq"])
        if step is None:
            continue
        acted_on = None
        if step.acted_on is not None:
            b = step.acted_on.bounds
            bounds = {"left": b.left, "top": b.top, "right": b.right, "bottom": b.bottom}
            acted_on = {"screen": step.acted_on.screen, "bounds": bounds}
        event["screens"] = {"before": step.before, "after": step.after, "actedOn": acted_on}
    data["screenSize"] = {"width": recorder.device_width, "height": recorder.device_height}
    data["images"] = {
        image.id: {
            "uri": f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}",
            "width": image.width,
            "height": image.height,
            "bytes": len(image.data),
        }
        for image in recorder.screens.values()
    }
    data["imagesTruncated"] = recorder.truncated
