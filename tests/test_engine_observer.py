"""The engine's observation seam: an observer sees every step start and end with what it acted on."""

from __future__ import annotations

from typing import Any

from interpreter.appmodel import LAUNCHER_PACKAGE, sample_apps
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.observe import StepEnded, StepStarted
from interpreter.simulator import SimulatedDevice

SHOP = "com.example.shop"
DRAFT: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "observed",
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP}, "next": "v"},
        {"id": "v", "kind": "control.setVar", "params": {"name": "x", "value": 1}, "next": "tap"},
        {
            "id": "tap",
            "kind": "action.tapByText",
            "params": {"text": "Sign in"},
            "retry": {"max": 1, "delayMs": 10},
            "next": "miss",
        },
        {"id": "miss", "kind": "action.tapByText", "params": {"text": "Nope", "timeoutMs": 200}},
    ],
}


class _Log:
    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.calls: list[tuple[str, Any]] = []

    def step_started(self, started: StepStarted) -> None:
        package = self.device.state.foreground_package()  # the model itself: costs the run no time
        self.calls.append(("started", (started.seq, started.node_id, started.kind, started.ui, package)))

    def step_ended(self, ended: StepEnded) -> None:
        text = ended.acted_on.text if ended.acted_on is not None else None
        self.calls.append(("ended", (ended.event.seq, ended.event.node_id, ended.event.outcome.value, text)))


def _run(observer: _Log | None) -> list[dict[str, Any]]:
    device = observer.device if observer is not None else SimulatedDevice(sample_apps(), VirtualClock())
    result = run_workflow(DRAFT, device, clock=device.clock, observer=observer)
    return [{k: v for k, v in e.to_json().items() if k != "startedAt"} for e in result.trace]


def test_the_observer_sees_each_step_with_the_device_and_the_element_acted_on() -> None:
    log = _Log(SimulatedDevice(sample_apps(), VirtualClock()))
    _run(log)
    assert log.calls == [
        ("started", (1, "open", "action.launchApp", False, LAUNCHER_PACKAGE)),
        ("ended", (1, "open", "ok", None)),
        ("started", (2, "v", "control.setVar", False, SHOP)),
        ("ended", (2, "v", "ok", None)),
        ("started", (3, "tap", "action.tapByText", True, SHOP)),
        ("ended", (3, "tap", "ok", "Sign in")),
        ("started", (4, "miss", "action.tapByText", True, SHOP)),
        ("ended", (4, "miss", "failed", None)),
    ]


def test_an_observer_changes_nothing_in_the_trace() -> None:
    log = _Log(SimulatedDevice(sample_apps(), VirtualClock()))
    assert _run(log) == _run(None)
