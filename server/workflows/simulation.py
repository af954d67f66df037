"""Runs a workflow version on the simulator: the same engine, a `SimulatedDevice`, a virtual clock.

`action.http` steps do not leave the server by default (that would let anyone make the
server call any address): they get a canned `200 {}` answer, and the result says so.
"""

from __future__ import annotations

from typing import Any

import httpx

from interpreter.appmodel import AppModel, sample_apps
from interpreter.approvals import ScenarioApprovals
from interpreter.clock import VirtualClock
from interpreter.denylist import Denylist
from interpreter.engine import run_workflow
from interpreter.errors import AppModelError, WorkflowError
from interpreter.simulator import SimulatedDevice
from server.errors import FieldProblem, ValidationFailed

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


def simulate(
    definition: dict[str, Any],
    *,
    inputs: dict[str, Any],
    apps: dict[str, Any] | None,
    scenario: dict[str, Any] | None,
    denylist: Denylist,
    live_http: bool = False,
) -> dict[str, Any]:
    """The run's JSON (the run fields the engine knows) after simulating `definition`."""
    model = load_apps(apps)
    approvals = load_scenario(scenario)
    clock = VirtualClock()
    device = SimulatedDevice(model, clock)
    transport = None if live_http else httpx.MockTransport(_canned_http)
    with httpx.Client(transport=transport, timeout=10.0, follow_redirects=False) as http:
        result = run_workflow(
            definition, device, inputs=inputs, clock=clock, denylist=denylist, approvals=approvals, http=http
        )
    return {**result.to_json(), "httpSimulated": not live_http}
