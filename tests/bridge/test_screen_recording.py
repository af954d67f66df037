"""The phone records a run with its own `screenrecord` (device_bridge/screen_recording.py): the
bridge pulls it, deletes it from the phone, joins its segments and sends it as the run's
`video.mp4`, which the server keeps in place of the video it makes from the frames. A phone
without the tool, or whose recording fails, still has its run succeed and the server's video."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from sqlalchemy import text

from device_bridge.outbox import Outbox
from device_bridge.screen_recording import Recording
from device_bridge.settings import BridgeSettings
from device_bridge.uploader import Credentials, Uploader
from tests.bridge.server_process import ServerProcess, publish_workflow
from tests.bridge.test_frames import SIGN_IN, Bridge, bridge  # noqa: F401  (the fixture)

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def sign_in(server: ServerProcess) -> str:
    with server.client() as client:
        return publish_workflow(client, SIGN_IN | {"name": "Sign in, recorded"})


@pytest.fixture
def faults(sample_emulator: Any) -> Iterator[Any]:
    yield sample_emulator
    sample_emulator.call(lambda device: device.faults.clear())


def decoded_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def upload_all(server: ServerProcess, bridge: Bridge) -> None:  # noqa: F811
    creds = Credentials(server.url, bridge.worker.paired.token)
    uploader = Uploader(bridge.outbox, lambda _device: creds, client=httpx.Client(timeout=30))
    try:
        uploader.upload_all()
    finally:
        uploader.close()


def stored_video(server: ServerProcess, run_id: str, wait_s: float = 30) -> dict[str, Any] | None:
    """The server's `video.mp4` row of the run (its meta), waiting up to `wait_s` for it."""
    deadline = time.monotonic() + wait_s
    while True:
        with server.db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT meta FROM artifacts WHERE run_id = :r AND name = 'video.mp4'"), {"r": run_id}
            ).first()
        if row is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if row is None:
        return None
    meta = row[0]
    if isinstance(meta, str):
        meta = json.loads(meta)
    return dict(meta or {})


def queued_video(outbox: Outbox, run_id: str) -> bytes | None:
    videos = [a.data for a in outbox.artifacts() if a.run_id == run_id and a.name == "video.mp4"]
    return videos[0] if videos else None


def test_the_phone_records_the_run_and_its_video_wins_over_the_frames(
    server: ServerProcess,
    bridge: Bridge,  # noqa: F811
    sign_in: str,
    sample_emulator: Any,
) -> None:
    # Segments of 1 s: a run of a few seconds is several files, joined into one.
    bridge.worker.settings = bridge.settings.model_copy(update={"screenrecord_time_limit_s": 1})
    with server.client() as client:
        started = time.monotonic()
        run_id = bridge.run(client, sign_in)
        took = time.monotonic() - started
    data = queued_video(bridge.outbox, run_id)
    assert data is not None, "the run's recording was not queued"
    assert data[4:8] == b"ftyp"
    assert decoded_frames(data) > 1
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        duration_s = float(container.duration or 0) / av.time_base
    # As long as the screen was recorded: the run (under a second on an idle virtual phone), not more.
    assert 0 < duration_s <= took + 1, (duration_s, took)
    left = sample_emulator.call(lambda device: device.fs.listdir("/sdcard"))
    assert [name for name, _ in left if name.startswith("phoneflow-")] == []

    upload_all(server, bridge)
    assert stored_video(server, run_id) == {"source": "phone"}
    with server.client() as client:
        listed = [a for a in client.get(f"/api/v1/runs/{run_id}/artifacts").json() if "video" in a["name"]]
        assert [(a["name"], a["contentType"], a["size"]) for a in listed] == [
            ("video.mp4", "video/mp4", len(data))
        ]
        assert client.get(f"/api/v1/runs/{run_id}/artifacts/video.mp4").content == data
    time.sleep(1.5)  # the assembler's quiet time after the late frames: it leaves the phone's video
    assert stored_video(server, run_id) == {"source": "phone"}


def test_a_phone_without_screenrecord_gets_the_servers_video(
    server: ServerProcess,
    bridge: Bridge,  # noqa: F811
    sign_in: str,
    faults: Any,
) -> None:
    faults.call(lambda device: device.faults.set(missing_commands=frozenset({"screenrecord"})))
    with server.client() as client:
        run_id = bridge.run(client, sign_in)
    assert queued_video(bridge.outbox, run_id) is None
    assert bridge.worker.screen_recorder._has_tool == {bridge.worker.paired.serial: False}
    upload_all(server, bridge)
    meta = stored_video(server, run_id)
    assert meta is not None
    assert meta.get("frames", 0) > 1, meta


def test_a_failing_recording_does_not_fail_the_run(
    server: ServerProcess,
    bridge: Bridge,  # noqa: F811
    sign_in: str,
    faults: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = "ERROR: unable to create video/avc codec (err=-12)"
    faults.call(lambda device: device.faults.set(screenrecord_error=error))
    with caplog.at_level(logging.WARNING, logger="device_bridge.screen_recording"), server.client() as client:
        run_id = bridge.run(client, sign_in)  # asserts the run succeeded
    assert queued_video(bridge.outbox, run_id) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(error in message and run_id in message for message in warnings), warnings
    upload_all(server, bridge)
    meta = stored_video(server, run_id)
    assert meta is not None
    assert meta.get("frames", 0) > 1, meta


def test_segments_at_their_time_limit_are_chained_and_joined(sample_emulator: Any, tmp_path: Path) -> None:
    import adbutils

    settings = BridgeSettings(state_dir=tmp_path, screenrecord_time_limit_s=1)
    adb = adbutils.AdbClient().device(sample_emulator.serial)
    recording = Recording(adb, "chained", sample_emulator.serial, settings)
    recording.start()
    time.sleep(2.6)
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        assert recording.finish(outbox, "device")
        assert len(recording.paths) >= 3, recording.paths
        (video,) = [a.data for a in outbox.artifacts() if a.run_id == "chained"]
    finally:
        outbox.close()
    with av.open(io.BytesIO(video)) as container:
        duration_s = float(container.duration or 0) / av.time_base
        frames = sum(1 for _ in container.decode(video=0))
    assert duration_s > 2.0, duration_s  # the segments one after the other, not only the first
    assert frames >= len(recording.paths)
    left = sample_emulator.call(lambda device: device.fs.listdir("/sdcard"))
    assert [name for name, _ in left if name.startswith("phoneflow-chained")] == []


@pytest.mark.parametrize("off", [{"screenrecord": False}, {"frames": "off"}])
def test_no_recording_when_turned_off_or_the_runs_frames_are_off(
    server: ServerProcess,
    bridge: Bridge,  # noqa: F811
    sign_in: str,
    off: dict[str, Any],
) -> None:
    bridge.worker.settings = bridge.settings.model_copy(update=off)
    with server.client() as client:
        run_id = bridge.run(client, sign_in)
    assert queued_video(bridge.outbox, run_id) is None
    assert bridge.worker.screen_recorder._has_tool == {}  # the phone was not even asked
