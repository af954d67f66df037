"""The frame recorder on the simulator: which steps get a frame, and the one before the first UI step."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_bridge.frames import FrameMode, FramePolicy, FrameRecorder
from device_bridge.outbox import Outbox
from interpreter.appmodel import sample_apps
from interpreter.appmodel.screen import render_jpeg
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.simulator import SimulatedDevice
from tests.test_engine import SHOP, node, workflow


class DrawnScreens(SimulatedDevice):
    """The simulator, with the emulator's renderer drawing its screen (as the virtual phone does)."""

    def screen_jpeg(self, scale: float, quality: int) -> bytes:
        return render_jpeg(self.state, quality, scale)


STEPS = workflow(
    node("user", "action.typeText", {"text": "x", "selector": {"text": "Nope"}, "timeoutMs": 100},
         {"failed": "open"}),
    node("open", "action.launchApp", {"package": SHOP}, "n"),
    node("n", "control.setVar", {"name": "n", "value": 1}, "gone"),
    node("gone", "action.tapByText", {"text": "Nope", "timeoutMs": 100}, {"failed": "end"}),
    node("end", "control.setVar", {"name": "n", "value": 2}),
)  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "names"),
    [
        (FrameMode.EVERY, ["frame-00000.jpg", "frame-00001.jpg", "frame-00002.jpg", "frame-00004.jpg"]),
        (FrameMode.FAILURES, ["frame-00001.jpg", "frame-00004.jpg"]),
        (FrameMode.OFF, []),
    ],
)
def test_the_policy_names_the_steps_that_get_a_frame(
    mode: FrameMode, names: list[str], tmp_path: Path
) -> None:
    clock = VirtualClock()
    outbox = Outbox(tmp_path / "outbox.db")
    device = DrawnScreens(sample_apps(), clock)
    recorder = FrameRecorder(device, outbox, "run-1", "dev-1", FramePolicy(mode))
    result = run_workflow(STEPS, device, clock=clock, observer=recorder)
    assert result.status.value == "success"
    queued = outbox.artifacts()
    assert [a.name for a in queued] == names == recorder.kept
    for item in queued:
        assert item.data[:2] == b"\xff\xd8"
        assert len(item.data) <= 60_000
    outbox.close()
