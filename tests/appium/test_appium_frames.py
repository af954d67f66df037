"""Frames on the Appium driver, off the step's path: a slow screenshot holds only the next change."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_bridge.appium_driver import AppiumDevice
from device_bridge.frames import FrameMode, FramePolicy, FrameRecorder
from device_bridge.outbox import Outbox
from interpreter.engine import run_workflow
from tests.appium.conftest import start_emulator
from tests.bridge.test_frame_hold import DELAY_S, STEPS  # the same slow-screenshot run

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def slow_phone(appium_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppiumDevice]:
    emulator: Any = start_emulator()
    try:
        lock_dir = tmp_path_factory.mktemp("appium-frame-locks")
        with AppiumDevice(emulator.serial, lock_dir=lock_dir, server_url=appium_url) as device:
            device.screen_size()
            emulator.call(lambda d: d.faults.set(screenshot_delay_s=DELAY_S))
            yield device
    finally:
        emulator.stop()


def test_a_slow_screenshot_through_appium_holds_only_the_next_change(
    slow_phone: AppiumDevice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    outbox = Outbox(tmp_path / "outbox.db")
    # No time limit on waiting for the next look: the launch's picture is asked for once the read
    # has its page source (the Appium server answers a session's commands one at a time).
    policy = FramePolicy(FrameMode.EVERY)
    with FrameRecorder(slow_phone, outbox, "run-1", "dev-1", policy, look_wait_s=60) as recorder:
        result = run_workflow(STEPS, slow_phone, observer=recorder)
    assert result.status.value == "success", result.error_message
    frames = {a.name: a for a in outbox.artifacts()}
    assert sorted(frames) == [f"frame-0000{seq}.jpg" for seq in (1, 3, 4)] == sorted(recorder.kept)
    opened, count, read, typed = result.trace

    def ended(event: Any) -> float:
        return float(event.started_at.timestamp() + event.duration_ms / 1000)

    # Neither the step that does not touch the phone nor the one that only reads waited for the
    # launch's frame; the typing (a change of the screen) did.
    assert count.started_at.timestamp() - ended(opened) < DELAY_S / 2
    assert read.duration_ms < DELAY_S * 1000 / 2
    assert typed.duration_ms >= DELAY_S * 1000 / 2
    # The read looked before the launch's picture was asked for and changed nothing: it shares it.
    assert recorder.shared == 1
    assert frames["frame-00003.jpg"].data == frames["frame-00001.jpg"].data
    assert frames["frame-00004.jpg"].data != frames["frame-00001.jpg"].data
    for item in frames.values():
        assert item.data[:3] == b"\xff\xd8\xff"
        assert json.loads(item.meta or "{}")["screen"] == list(slow_phone.screen_size())
    outbox.close()
    # The frame thread's screenshot and the step's commands went at once, each on a kept connection:
    # none was opened for one command and thrown away ("Connection pool is full").
    assert not [record for record in caplog.records if "pool is full" in record.getMessage()]
