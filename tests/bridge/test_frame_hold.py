"""A step's frame is taken off the step's path: a slow capture holds only the next change of the screen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from device_bridge.driver import U2Device
from device_bridge.frames import FrameMode, FramePolicy, FrameRecorder
from device_bridge.outbox import Outbox
from interpreter.engine import run_workflow
from tests.test_engine import node, workflow

pytestmark = pytest.mark.emulator

SHOP = "com.example.shop"
DELAY_S = 0.8
USER = {"resourceId": f"{SHOP}:id/user"}

STEPS = workflow(
    node("open", "action.launchApp", {"package": SHOP, "stopFirst": True}, "count"),
    node("count", "control.setVar", {"name": "n", "value": 1}, "read"),
    node("read", "action.readText", {"selector": USER}, "type"),
    node("type", "action.typeText", {"text": "alice", "clear": True, "selector": USER}),
    targetPackages=[SHOP],
)  # fmt: skip


@pytest.fixture
def slow_phone(sample_emulator: Any, tmp_path: Path) -> Iterator[U2Device]:
    with U2Device(sample_emulator.serial, lock_dir=tmp_path / "locks") as device:
        sample_emulator.call(lambda d: d.faults.set(screenshot_delay_s=DELAY_S))
        try:
            yield device
        finally:
            sample_emulator.call(lambda d: d.faults.clear())


def test_a_slow_capture_holds_only_the_next_change_of_the_screen(
    slow_phone: U2Device, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    with FrameRecorder(slow_phone, outbox, "run-1", "dev-1", FramePolicy(FrameMode.EVERY)) as recorder:
        result = run_workflow(STEPS, slow_phone, observer=recorder)
    assert result.status.value == "success", result.error_message
    frames = {a.name: a for a in outbox.artifacts()}
    assert (
        sorted(frames) == ["frame-00001.jpg", "frame-00003.jpg", "frame-00004.jpg"] == sorted(recorder.kept)
    )
    opened, count, read, typed = result.trace

    def ended(event: Any) -> float:
        return float(event.started_at.timestamp() + event.duration_ms / 1000)

    # The steps after the launch did not wait for its frame: neither the one that does not touch
    # the phone nor the one that only reads the screen (frames 1 and 3 took DELAY_S each).
    assert count.started_at.timestamp() - ended(opened) < DELAY_S / 2
    assert read.started_at.timestamp() - ended(opened) < DELAY_S / 2
    assert read.duration_ms < DELAY_S * 1000 / 2
    # Typing changes the screen: it waited for the frames before it, so frame 1 shows the screen
    # as the launch left it (the capture looks at the screen after its delay).
    taken_1 = datetime.fromisoformat(json.loads(frames["frame-00001.jpg"].meta or "{}")["takenAt"])
    assert read.started_at < taken_1
    assert typed.duration_ms >= DELAY_S * 1000 / 2
    assert frames["frame-00001.jpg"].data != frames["frame-00004.jpg"].data
    # Frame 3 (after the read) shows the same screen as frame 1: nothing changed it in between.
    assert frames["frame-00003.jpg"].data == frames["frame-00001.jpg"].data
    meta_4 = json.loads(frames["frame-00004.jpg"].meta or "{}")
    assert meta_4["nodeId"] == "type"
    assert meta_4["bounds"] is not None
    outbox.close()


def test_the_last_frame_is_queued_when_the_recorder_closes(slow_phone: U2Device, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    one = workflow(node("open", "action.launchApp", {"package": SHOP}), targetPackages=[SHOP])
    recorder = FrameRecorder(slow_phone, outbox, "run-2", "dev-1", FramePolicy(FrameMode.EVERY))
    result = run_workflow(one, slow_phone, observer=recorder)
    assert result.status.value == "success", result.error_message
    assert outbox.artifacts() == []  # still being taken: the run did not wait for it
    recorder.close()
    assert [a.name for a in outbox.artifacts()] == ["frame-00001.jpg"]
    outbox.close()


LOOKS = workflow(
    node("open", "action.launchApp", {"package": SHOP, "stopFirst": True}, "read"),
    node("read", "action.readText", {"selector": USER}, "again"),
    node("again", "action.readText", {"selector": USER}, "type"),
    node("type", "action.typeText", {"text": "bob", "clear": True, "selector": USER}),
    targetPackages=[SHOP],
)  # fmt: skip


def test_a_step_that_only_looked_before_the_picture_was_asked_for_shares_it(
    sample_emulator: Any, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    # No time limit on waiting for the next look: each picture is asked for at the next step's look
    # (or before its change), so which frames share one does not depend on the machine's speed.
    with (
        U2Device(sample_emulator.serial, lock_dir=tmp_path / "locks") as phone,
        FrameRecorder(
            phone, outbox, "run-3", "dev-1", FramePolicy(FrameMode.EVERY), look_wait_s=60
        ) as recorder,
    ):
        result = run_workflow(LOOKS, phone, observer=recorder)
    assert result.status.value == "success", result.error_message
    frames = {a.name: a for a in outbox.artifacts()}
    assert sorted(frames) == [f"frame-0000{seq}.jpg" for seq in (1, 2, 3, 4)]
    taken = {name: json.loads(a.meta or "{}")["takenAt"] for name, a in frames.items()}
    opened, read, again, typed = result.trace
    # The launch's picture was asked for once the read's look had its answer: it is the read's too.
    assert recorder.shared == 1
    assert taken["frame-00001.jpg"] == taken["frame-00002.jpg"]
    assert frames["frame-00001.jpg"].data == frames["frame-00002.jpg"].data
    assert datetime.fromisoformat(taken["frame-00001.jpg"]) > read.started_at
    # The second read looked after that picture was asked for: it got a picture of its own (of
    # the same screen), and the typing got its own of the changed screen.
    assert taken["frame-00003.jpg"] > taken["frame-00002.jpg"]
    assert frames["frame-00003.jpg"].data == frames["frame-00002.jpg"].data
    assert datetime.fromisoformat(taken["frame-00003.jpg"]) > again.started_at
    assert frames["frame-00004.jpg"].data != frames["frame-00003.jpg"].data
    assert datetime.fromisoformat(taken["frame-00004.jpg"]) > typed.started_at
    outbox.close()
