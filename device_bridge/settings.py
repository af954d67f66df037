"""The bridge's settings: one pydantic-settings object, `PHONEFLOW_BRIDGE_` prefix.

Every value can come from the environment (`PHONEFLOW_BRIDGE_STATE_DIR=...`) or be
passed by the command line, which wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    """`~/.phoneflow-bridge`, or `./.phoneflow/bridge` when there is no usable home."""
    try:
        home = Path.home()
    except RuntimeError:
        return Path.cwd() / ".phoneflow" / "bridge"
    return home / ".phoneflow-bridge"


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHONEFLOW_BRIDGE_", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)
    server_url: str | None = None
    # How often a served device says it is alive and asks for work.
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    # Follow adb's device list (`host:track-devices`): a phone unplugged mid-run ends that run
    # `failed` at once, and one plugged back is served again (device_bridge/adb_tracker.py).
    track_devices: bool = True
    claim_interval_s: float = Field(default=1.0, gt=0)
    # An idle device's wake-up long poll: the server answers it as soon as a run is queued for the
    # device (then the bridge claims), else after this long. 0: no wake-up, claims every
    # claim_interval_s (as with a server older than the bridge, or while the poll fails).
    wakeup_wait_s: float = Field(default=20.0, ge=0, le=30)
    # Progress reports of a moving run: at most this far apart (design: at least once a second).
    progress_interval_s: float = Field(default=0.5, gt=0, le=1.0)
    upload_batch_size: int = Field(default=100, ge=1, le=100)
    # The server refuses bodies over its max_body_bytes (1 MiB by default): stay well below.
    upload_max_batch_bytes: int = Field(default=512 * 1024, ge=1024)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    http_timeout_s: float = Field(default=10.0, gt=0)
    # How often a run waiting at an approval node asks the server whether someone answered.
    approval_poll_interval_s: float = Field(default=1.0, gt=0)
    # The server's artifact size limit is its own; this one keeps a dump from filling the outbox.
    max_artifact_bytes: int = Field(default=5_000_000, gt=0)
    # How long the step gate (asked before every step of a served run) may take before the
    # step starts anyway (offline: a cancel then takes effect when it is heard).
    gate_timeout_s: float = Field(default=2.0, gt=0)
    # The server holds each ask for commands (the screen inspector's) this long when there is none.
    command_wait_s: float = Field(default=20.0, gt=0, le=30)
    # After an inspector's click: how long the screen may take to settle before it is read.
    click_settle_s: float = Field(default=2.0, ge=0, le=10)
    # Screens per step (device_bridge/frames.py): after every step that touches the phone, after
    # failed steps only, or never; scaled to frame_width pixels, JPEG, at most frame_max_bytes each.
    frames: Literal["off", "failures", "every"] = "every"
    frame_width: int = Field(default=360, ge=90, le=1440)
    frame_quality: int = Field(default=60, ge=20, le=95)
    frame_max_bytes: int = Field(default=60_000, ge=5_000)
    # The phone records each run with its own `screenrecord` (uiautomator2 phones that have it;
    # device_bridge/screen_recording.py): segments of at most screenrecord_time_limit_s (Android's
    # limit is 180), at this bit rate (a still screen costs far less), sent as the run's video.mp4.
    screenrecord: bool = True
    screenrecord_bit_rate: int = Field(default=1_000_000, ge=100_000, le=100_000_000)
    screenrecord_time_limit_s: int = Field(default=180, ge=1, le=180)
    # Local additions to the server's package denylist: it can only add to the server's list.
    denylist_file: Path | None = None
    # How the engine drives phones: uiautomator2 over this machine's adb, or an Appium server.
    driver: Literal["uiautomator2", "appium"] = "uiautomator2"
    appium_url: str = "http://127.0.0.1:4723"
    # Added to (or overriding) the Appium session's capabilities, e.g. a device cloud's options (JSON).
    appium_capabilities: dict[str, Any] = Field(default_factory=dict)

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def outbox_db(self) -> Path:
        return self.state_dir / "outbox.db"

    @property
    def lock_dir(self) -> Path:
        return self.state_dir / "locks"

    def ensure_state_dir(self) -> Path:
        """Create the state directory (private to the user: it holds device tokens)."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.state_dir
