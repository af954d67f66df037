"""Screens per step on the emulator: the bridge keeps a frame after each step that touches the phone,
queues it in the outbox with the acted-on element's bounds, and the uploader sends it later.

Frames are as durable as reports (upload processes killed with SIGKILL at random moments lose
and double none of them), and a server that takes its time with uploads never holds a step up.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from device_bridge.agent import DeviceWorker
from device_bridge.driver import U2Device
from device_bridge.outbox import Outbox
from device_bridge.settings import BridgeSettings
from device_bridge.state import BridgeState
from device_bridge.uploader import Credentials, Uploader
from tests.bridge.server_process import ServerProcess, pair_in_state_dir, publish_workflow, trigger

pytestmark = pytest.mark.emulator

SHOP = "com.example.shop"
USER_FIELD = {"resourceId": f"{SHOP}:id/user"}
SIGN_IN: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Sign in and look",
    "targetPackages": [SHOP],
    "start": "open",
    "nodes": [
        {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
         "next": "user"},
        {"id": "user", "kind": "action.typeText", "params": {"text": "alice", "selector": USER_FIELD},
         "next": "n"},
        {"id": "n", "kind": "control.setVar", "params": {"name": "n", "value": 1}, "next": "read"},
        {"id": "read", "kind": "action.readText", "params": {"selector": USER_FIELD}, "next": "sign_in"},
        {"id": "sign_in", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "orders"},
        {"id": "orders", "kind": "action.waitForText", "params": {"text": "New order", "timeoutMs": 3000}},
    ],
}  # fmt: skip
# The frames of a SIGN_IN run: one after each step that touches the phone (not after the setVar,
# step 3); none before the first step, an app launch.
FRAMES = ["frame-00001.jpg", "frame-00002.jpg", "frame-00004.jpg", "frame-00005.jpg", "frame-00006.jpg"]


@dataclass
class Bridge:
    """A worker serving the emulator here, and its outbox (no uploader unless a test starts one)."""

    worker: DeviceWorker
    outbox: Outbox
    settings: BridgeSettings
    device_id: str

    def run(self, client: httpx.Client, workflow_id: str) -> str:
        run_id = trigger(client, workflow_id, self.device_id)
        claimed = self.worker.api.claim()
        assert claimed is not None
        assert claimed.run_id == run_id
        result = self.worker.execute(claimed)
        assert result is not None
        assert result.status.value == "success", result.error_message
        return run_id


@pytest.fixture
def bridge(server: ServerProcess, sample_emulator: Any, tmp_path: Path) -> Iterator[Bridge]:
    state_dir = tmp_path / "bridge"
    device = pair_in_state_dir(server, sample_emulator.serial, state_dir)
    settings = BridgeSettings(state_dir=state_dir, server_url=server.url)
    settings.ensure_state_dir()
    paired = BridgeState(settings.state_db).device(sample_emulator.serial)
    outbox = Outbox(settings.outbox_db)
    phone = U2Device(sample_emulator.serial, lock_dir=settings.lock_dir)
    worker = DeviceWorker(paired, phone, outbox, settings, threading.Event())
    try:
        yield Bridge(worker, outbox, settings, device.id)
    finally:
        worker.client.close()
        phone.close()
        outbox.close()


@pytest.fixture(scope="module")
def sign_in_workflow(server: ServerProcess) -> str:
    with server.client() as client:
        return publish_workflow(client, SIGN_IN)


def frame_events(server: ServerProcess, run_id: str) -> list[dict[str, Any]]:
    with server.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT payload FROM run_events WHERE run_id = :r AND event = 'run.frame' ORDER BY id"),
            {"r": run_id},
        ).all()
    return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in rows]


def test_frames_are_queued_per_step_and_survive_kill_nine_during_uploads(
    server: ServerProcess, bridge: Bridge, sign_in_workflow: str
) -> None:
    client = server.client()
    run_id = bridge.run(client, sign_in_workflow)
    queued = {a.name: a for a in bridge.outbox.artifacts() if a.name.startswith("frame-")}
    assert sorted(queued) == FRAMES
    for item in queued.values():
        assert item.content_type == "image/jpeg"
        assert item.data[:3] == b"\xff\xd8\xff"
        assert len(item.data) <= 60_000
    tapped = json.loads(queued["frame-00005.jpg"].meta or "{}")
    assert tapped["nodeId"] == "sign_in"
    assert tapped["kind"] == "action.tapByText"
    assert tapped["screen"] == [1080, 2340]
    left, top, right, bottom = tapped["bounds"]
    assert 0 <= left < right <= 1080
    assert 0 <= top < bottom <= 2340
    assert json.loads(queued["frame-00001.jpg"].meta or "{}")["bounds"] is None  # a launch acts on no element
    bridge.outbox.close()

    # Upload processes killed at random moments: every frame arrives once, with one event each.
    rng = random.Random(20261129)
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-m", "device_bridge", "upload", "--state-dir", str(bridge.settings.state_dir)],
            env={**os.environ, "PHONEFLOW_BRIDGE_UPLOAD_BATCH_SIZE": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.5, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    done = subprocess.run(
        [sys.executable, "-m", "device_bridge", "upload", "--state-dir", str(bridge.settings.state_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bridge.outbox = Outbox(bridge.settings.outbox_db)
    assert bridge.outbox.artifacts() == []
    stored = client.get(f"/api/v1/runs/{run_id}/artifacts").json()
    assert sorted(a["name"] for a in stored if a["name"].startswith("frame-")) == FRAMES
    events = frame_events(server, run_id)
    assert sorted(e["name"] for e in events) == FRAMES
    by_name = {e["name"]: e for e in events}
    assert by_name["frame-00005.jpg"]["bounds"] == [left, top, right, bottom]
    assert by_name["frame-00005.jpg"]["url"] == f"/api/v1/runs/{run_id}/artifacts/frame-00005.jpg"
    image = client.get(by_name["frame-00005.jpg"]["url"])
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == queued["frame-00005.jpg"].data
    client.close()


class HeldUploads(httpx.HTTPTransport):
    """The network as a slow server makes it: artifact uploads wait until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/artifacts" in request.url.path:
            self.waiting.set()
            self.release.wait(120)
        return super().handle_request(request)


def test_a_slow_server_does_not_hold_the_steps_up(
    server: ServerProcess, bridge: Bridge, sign_in_workflow: str
) -> None:
    client = server.client()
    network = HeldUploads()
    creds = Credentials(server.url, bridge.worker.paired.token)
    uploader = Uploader(
        bridge.outbox, lambda _device: creds, client=httpx.Client(transport=network, timeout=130)
    )
    stop = threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop,), kwargs={"idle_wait_s": 0.05}, daemon=True)
    thread.start()
    try:
        run_id = bridge.run(client, sign_in_workflow)
        # The run ended while the server had not taken a single frame: no step waited for one.
        assert network.waiting.is_set()
        stored = client.get(f"/api/v1/runs/{run_id}/artifacts").json()
        assert [a for a in stored if a["name"].startswith("frame-")] == []
        queued = [a.name for a in bridge.outbox.artifacts() if a.run_id == run_id]
        assert sorted(queued) == [*FRAMES, "video.mp4"]  # and the phone's own recording of the run
        network.release.set()
        deadline = time.monotonic() + 60
        while bridge.outbox.artifacts() and time.monotonic() < deadline:
            time.sleep(0.1)
        stored = client.get(f"/api/v1/runs/{run_id}/artifacts").json()
        assert sorted(a["name"] for a in stored if a["name"].startswith("frame-")) == FRAMES
    finally:
        network.release.set()
        stop.set()
        thread.join(30)
        uploader.close()
        client.close()
