"""adb's device tracking as the bridge sees it, against the machine's real adb server: a phone's
state follows `host:track-devices`, and a phone this adb never listed (an Appium device cloud's)
is `unknown`, never `gone`, so it is not taken for unplugged."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from device_bridge.adb_tracker import GONE, AdbTracker
from device_bridge.agent import Agent
from device_bridge.settings import BridgeSettings
from device_bridge.state import BridgeState
from tests.bridge.conftest import start_emulator

pytestmark = pytest.mark.emulator


class CloudPhone:
    """Stands for a phone behind a remote Appium server: this machine's adb does not know it."""

    def close(self) -> None:
        pass


def _until(check: Any, what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_tracker_follows_a_phone_that_goes_and_comes_back(adb_server: str) -> None:
    stop = threading.Event()
    tracker = AdbTracker(stop)
    seen: list[tuple[str, str]] = []
    tracker.listen(lambda serial, state: seen.append((serial, state)))
    thread = threading.Thread(target=tracker.serve, daemon=True)
    thread.start()
    emu = start_emulator(None)
    try:
        _until(lambda: tracker.state(emu.serial) == "device", "adb lists the emulator")  # type: ignore[attr-defined]
        emu.stop()  # type: ignore[attr-defined]
        _until(lambda: tracker.state(emu.serial) == GONE, "adb drops the stopped emulator")  # type: ignore[attr-defined]
        assert (emu.serial, GONE) in seen  # type: ignore[attr-defined]
    finally:
        emu.stop()  # type: ignore[attr-defined]
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_phone_adb_never_listed_is_unknown_not_gone(adb_server: str, tmp_path: Path) -> None:
    settings = BridgeSettings(state_dir=tmp_path / "bridge", server_url="http://127.0.0.1:9")
    settings.ensure_state_dir()
    BridgeState(settings.state_db).save_pairing("cloud-pixel-8", "d-1", "pf_dev_x", "http://127.0.0.1:9")
    agent = Agent(settings, ["cloud-pixel-8"], opener=lambda serial: CloudPhone())  # type: ignore[arg-type,return-value]
    assert agent.tracker is not None
    thread = threading.Thread(target=agent.tracker.serve, daemon=True)
    thread.start()
    try:
        assert agent.tracker.ready.wait(10)
        assert agent.tracker.state("cloud-pixel-8") == GONE
        agent._add_worker(agent.paired[0], CloudPhone())  # type: ignore[arg-type]
        worker = agent.workers[0]
        worker.adb_changed(GONE)
        assert worker.unplugged is None  # not ours to judge: its driver notices a phone that went away
        health = agent.phone_health(worker)
        assert health["adbState"] == "unknown"
        assert health["battery"] is None
    finally:
        agent.stop.set()
        thread.join(5)
        agent.outbox.close()
