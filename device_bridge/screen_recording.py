"""A run recorded by the phone itself: Android's `screenrecord`, started when a run starts.

    recording = recorder.start(device, run_id, serial, frames, settings)   # None: not recorded
    ... the run ...
    recording.finish(outbox, device_id)                                    # after the run's report

Only for phones driven by uiautomator2 over this machine's adb (the Appium driver's phone may be
in a device cloud) and only when the phone has the tool (`which screenrecord`, asked once per
phone). The tool runs in a shell stream of the same adb device handle the driver uses, writing
`/sdcard/phoneflow-RUN-N.mp4`; it stops by itself at its time limit (180 s at most, Android's
own limit), and a new segment is started then, so a long run is several files. At the run's end
the bridge sends SIGINT (`pkill -INT screenrecord` from a second shell: the tool then finishes
its file), waits for the stream to end, pulls each file (adb sync), deletes it from the phone,
joins the segments into one MP4 (PyAV remux, no re-encoding) and queues it in the outbox as the
run's `video.mp4` (video/mp4). The server keeps a phone's recording in place of the video it
assembles from the frames.

Nothing here fails a run, nor holds it up beyond the tool's start (at most `STARTUP_WAIT_S`, so that
the first step is in the video): the recording runs on its own thread, and is finished after
the run's report is queued; one that fails (no encoder, the file missing or unfinished, larger
than `max_artifact_bytes`) is logged as a warning, and the server's video from the frames stays.
`PHONEFLOW_BRIDGE_SCREENRECORD=false` turns it off, as does a run whose frames are `off`.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from device_bridge.outbox import Outbox
from device_bridge.settings import BridgeSettings
from interpreter.device import Artifact

log = logging.getLogger(__name__)

VIDEO_NAME = "video.mp4"
VIDEO_TYPE = "video/mp4"
# How long the tool may take to finish its file after SIGINT (a phone's encoder drains, the
# muxer writes the index) before the stream is closed (a hang-up finishes it too).
STOP_WAIT_S = 5.0
# How long a run's start may wait for the tool to record (a phone sets its encoder up in ~0.1-0.5 s).
STARTUP_WAIT_S = 2.0
# A segment that ends this much sooner than its time limit without being stopped has failed
# (the tool refused its options, the encoder could not be had): no new segment is started.
EARLY_END_S = 1.0


def adb_device_of(device: object) -> Any | None:
    """The adbutils device under a uiautomator2 driver (`U2Device.u2.adb_device`), else None."""
    u2 = getattr(device, "u2", None)
    return getattr(u2, "adb_device", None) if u2 is not None else None


class ScreenRecorder:
    """Starts the recordings of one phone's runs; remembers whether the phone has the tool."""

    def __init__(self) -> None:
        self._has_tool: dict[str, bool] = {}

    def start(
        self, device: object, run_id: str, serial: str, frames: str, settings: BridgeSettings
    ) -> Recording | None:
        """Start recording `run_id` on `device`; None when it is not to be (or cannot be) recorded."""
        if not settings.screenrecord or settings.driver != "uiautomator2" or frames == "off":
            return None
        adb = adb_device_of(device)
        if adb is None:
            return None
        try:
            if not self._has(adb, serial):
                return None
            recording = Recording(adb, run_id, serial, settings)
            recording.start()
            return recording
        except Exception as exc:  # the recording never matters more than the run
            log.warning("device %s: run %s is not recorded on the phone: %s", serial, run_id, exc)
            return None

    def _has(self, adb: Any, serial: str) -> bool:
        if serial not in self._has_tool:
            answer = str(adb.shell("which screenrecord", timeout=10)).strip()
            self._has_tool[serial] = answer.endswith("/screenrecord")
            if not self._has_tool[serial]:
                log.info(
                    "device %s has no screenrecord: its runs' videos are made by the server from the frames",
                    serial,
                )
        return self._has_tool[serial]


class Recording:
    """One run's recording on the phone: segments of `screenrecord`, chained on a thread."""

    def __init__(self, adb: Any, run_id: str, serial: str, settings: BridgeSettings) -> None:
        self.adb = adb
        self.run_id = run_id
        self.serial = serial
        self.settings = settings
        self.limit_s = settings.screenrecord_time_limit_s
        self.paths: list[str] = []
        self.errors: list[str] = []
        self._stopping = threading.Event()
        self._recording = threading.Event()  # the tool records (or will not): the run may start
        self._lock = threading.Lock()
        self._stream: Any | None = None
        self._thread = threading.Thread(target=self._record, name=f"screenrecord-{serial}", daemon=True)

    def start(self, wait_s: float = STARTUP_WAIT_S) -> None:
        """Start the tool, and wait (at most `wait_s`) until it records, so the run's first step is in
        the video: `--verbose` makes it say so (`Content area is ...`) once its encoder is set up."""
        self._thread.start()
        self._recording.wait(wait_s)

    def _command(self, path: str) -> str:
        rate = self.settings.screenrecord_bit_rate
        return f"screenrecord --verbose --time-limit {self.limit_s} --bit-rate {rate} {path}"

    def _read(self, stream: Any) -> str:
        """The tool's output until it ends (its stream closes); marks the recording started on the way."""
        said = b""
        while chunk := stream.conn.recv(4096):
            said += chunk
            if not self._recording.is_set() and (b"Content area is" in said or len(said) > 4096):
                self._recording.set()
        return said.decode("utf-8", errors="replace")

    def _record(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                path = f"/sdcard/phoneflow-{self.run_id}-{len(self.paths) + 1}.mp4"
                try:
                    self._stream = self.adb.shell(self._command(path), stream=True)
                    self._stream.conn.settimeout(None)  # silent until the tool ends, minutes later
                except Exception as exc:
                    self.errors.append(f"starting screenrecord: {type(exc).__name__}: {exc}")
                    self._recording.set()
                    return
                self.paths.append(path)
                stream = self._stream
            began = time.monotonic()
            try:
                said = self._read(stream)
            except Exception as exc:  # the stream was closed to stop it, or the phone went away
                said = f"{type(exc).__name__}: {exc}"
            finally:
                self._recording.set()  # ended (or failed): nothing to wait for at the start
                with self._lock:
                    self._stream = None
                stream.close()
            if not self._stopping.is_set() and time.monotonic() - began < self.limit_s - EARLY_END_S:
                took = time.monotonic() - began
                self.errors.append(f"screenrecord ended after {took:.1f} s: {said.strip()}")
                return

    def stop(self) -> None:
        """Have the tool finish its file (SIGINT), and wait for its stream to end."""
        self._stopping.set()
        deadline = time.monotonic() + STOP_WAIT_S
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                # The tool may not have started yet when the run was short: ask again until it ends.
                self.adb.shell("pkill -INT screenrecord", timeout=10)
            except Exception as exc:  # the phone is gone: nothing to wait for
                log.debug("device %s: pkill -INT screenrecord: %s", self.serial, exc)
                break
            self._thread.join(0.5)
        if self._thread.is_alive():
            with self._lock:
                stream = self._stream
            if stream is not None:
                stream.close()  # a hang-up: the tool finishes its file on SIGHUP as on SIGINT
            self._thread.join(1.0)

    def collect(self) -> bytes:
        """Pull the segments, delete them from the phone, and join them into one MP4."""
        if not self.paths:
            raise RecordingError("; ".join(self.errors) or "screenrecord never started")
        with tempfile.TemporaryDirectory(prefix="phoneflow-screenrecord-") as folder:
            local: list[Path] = []
            try:
                for index, path in enumerate(self.paths):
                    target = Path(folder) / f"{index}.mp4"
                    self.adb.sync.pull(path, str(target))
                    local.append(target)
            finally:
                self.adb.shell(["rm", "-f", *self.paths], timeout=10)
            joined = Path(folder) / "joined.mp4"
            try:
                join_segments(local, joined)
            except RecordingError as exc:
                raise RecordingError("; ".join([str(exc), *self.errors])) from exc
            return joined.read_bytes()

    def finish(self, outbox: Outbox, device_id: str) -> bool:
        """Stop, collect and queue the recording as the run's `video.mp4`; False (and a warning)
        when there is none to send. Never raises."""
        try:
            self.stop()
            data = self.collect()
            if len(data) > self.settings.max_artifact_bytes:
                raise RecordingError(
                    f"the recording is {len(data)} bytes, over the bridge's max_artifact_bytes "
                    f"({self.settings.max_artifact_bytes}); lower PHONEFLOW_BRIDGE_SCREENRECORD_BIT_RATE"
                )
            outbox.add_artifact(self.run_id, device_id, Artifact(VIDEO_NAME, VIDEO_TYPE, data))
            return True
        except Exception as exc:
            log.warning(
                "device %s: run %s: the phone's screen recording could not be kept (%s); the server "
                "makes the run's video from its frames instead",
                self.serial,
                self.run_id,
                exc,
            )
            return False


class RecordingError(Exception):
    """The phone's recording cannot be sent (said in the warning; the run is not affected)."""


def join_segments(segments: list[Path], target: Path) -> None:
    """The segments' video, one after the other, as one MP4 (packets copied, not re-encoded)."""
    import av

    readable = [path for path in segments if _has_video(path)]
    if not readable:
        raise RecordingError("no segment of the recording holds a finished video (was it stopped by force?)")
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream_out: Any = None
        offset = 0  # in the output stream's time base
        for path in readable:
            with av.open(str(path)) as source:
                stream_in = source.streams.video[0]
                if stream_out is None:
                    stream_out = out.add_stream_from_template(stream_in)
                    stream_out.time_base = stream_in.time_base
                scale = Fraction(stream_in.time_base or Fraction(1, 1000)) / Fraction(
                    stream_out.time_base or Fraction(1, 1000)
                )
                end = offset
                for packet in source.demux(stream_in):
                    if packet.dts is None:
                        continue  # the demuxer's flush packet
                    duration = packet.duration or 0
                    pts = packet.pts if packet.pts is not None else packet.dts
                    packet.pts = offset + round(pts * scale)
                    packet.dts = offset + round(packet.dts * scale)
                    packet.duration = round(duration * scale)
                    end = max(end, packet.pts + max(1, packet.duration))
                    packet.stream = stream_out
                    out.mux(packet)
                offset = end


def _has_video(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as source:
            return bool(source.streams.video) and source.streams.video[0].frames != 0
    except (av.error.FFmpegError, OSError):
        return False
