"""The simulator's screen recorder: where the acted-on element is outlined, and its cap on pictures."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter import screen_recorder
from interpreter.appmodel import AppModel
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.screen_recorder import ScreenRecorder
from interpreter.simulator import SimulatedDevice

APPS = AppModel.from_dict(
    {
        "schemaVersion": 1,
        "apps": [
            {
                "package": "com.acme.slow",
                "label": "Slow",
                "startScreen": "home",
                "screens": [
                    {
                        "id": "home",
                        "title": "Slow",
                        "widgets": [
                            {"id": "late", "text": "Ready", "appearAfterMs": 1500},
                            {"id": "field", "class": "EditText", "resourceId": "com.acme.slow:id/field"},
                        ],
                    }
                ],
            }
        ],
    }
)


def _run(nodes: list[dict[str, Any]], **recorder_args: Any) -> tuple[ScreenRecorder, list[dict[str, Any]]]:
    for here, there in zip(nodes, nodes[1:], strict=False):
        here.setdefault("next", there["id"])
    definition = {"schemaVersion": 1, "name": "t", "start": nodes[0]["id"], "nodes": nodes}
    clock = VirtualClock()
    device = SimulatedDevice(APPS, clock)
    recorder = ScreenRecorder(device.state, clock, **recorder_args)
    result = run_workflow(definition, device, clock=clock, observer=recorder)
    return recorder, [event.to_json() for event in result.trace]


def test_an_element_that_appeared_during_a_wait_is_outlined_on_the_screen_after_it() -> None:
    recorder, trace = _run(
        [
            {"id": "open", "kind": "action.launchApp", "params": {"package": "com.acme.slow"}},
            {"id": "wait", "kind": "action.waitForText", "params": {"text": "Ready"}},
            {"id": "read", "kind": "action.readText", "params": {"selector": {"text": "Ready"}}},
        ]
    )
    assert [e["outcome"] for e in trace] == ["ok", "ok", "ok"]
    _open, wait, read = recorder.steps
    assert wait.before != wait.after
    assert wait.acted_on is not None
    assert wait.acted_on.screen == wait.after
    # once on screen, a read finds it on the screen before the step
    assert read.acted_on is not None
    assert read.acted_on.screen == read.before == wait.after
    assert read.acted_on.bounds == wait.acted_on.bounds
    assert recorder.screens[wait.after].width == 360


def test_past_the_cap_new_screens_are_not_drawn_and_the_recorder_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(screen_recorder, "MAX_SCREENS", 2)
    typing = [
        {
            "id": f"type{n}",
            "kind": "action.typeText",
            "params": {"text": str(n), "selector": {"resourceId": "com.acme.slow:id/field"}},
        }
        for n in range(3)
    ]
    recorder, trace = _run(
        [{"id": "open", "kind": "action.launchApp", "params": {"package": "com.acme.slow"}}, *typing]
    )
    assert all(e["outcome"] == "ok" for e in trace)
    assert len(recorder.screens) == 2
    assert recorder.truncated
    assert recorder.steps[-1].after is None
    assert recorder.steps[0].before is not None


def test_recording_screens_changes_nothing_in_the_run() -> None:
    """Looking costs the run no time: the same trace (times included) with and without pictures."""
    nodes: list[dict[str, Any]] = [
        {"id": "open", "kind": "action.launchApp", "params": {"package": "com.acme.slow"}},
        {
            "id": "type",
            "kind": "action.typeText",
            "params": {"text": "x", "selector": {"resourceId": "com.acme.slow:id/field"}},
        },
        {"id": "wait", "kind": "action.waitForText", "params": {"text": "Ready"}},
        {"id": "pause", "kind": "action.wait", "params": {"ms": 700}},
    ]
    definition = {"schemaVersion": 1, "name": "t", "start": "open", "nodes": nodes}
    for here, there in zip(nodes, nodes[1:], strict=False):
        here["next"] = there["id"]

    def trace(record: bool) -> list[dict[str, Any]]:
        clock = VirtualClock()
        device = SimulatedDevice(APPS, clock)
        observer = ScreenRecorder(device.state, clock) if record else None
        result = run_workflow(definition, device, clock=clock, observer=observer)
        return [event.to_json() for event in result.trace]

    plain = trace(False)
    assert trace(True) == plain
    assert plain[2]["durationMs"] > 0
