"""The server's configuration: one pydantic-settings object, `PHONEFLOW_` environment prefix.

`DATABASE_URL` (without the prefix) is honoured as well; the
prefixed `PHONEFLOW_DATABASE_URL` wins when both are set.

Every command that opens the database without a URL (`serve`, `admin ...`) uses the same
default wherever it is run from: `phoneflow.db` in the data folder, `$PHONEFLOW_DATA_DIR`
or the user's data folder (`~/.local/share/phoneflow` on Linux).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from interpreter.denylist import Denylist

MIB = 1024 * 1024
_log = logging.getLogger("phoneflow.server")


class _DenylistFile:
    """The global denylist file, read again whenever it changes (its mtime or size).

    A file that cannot be read at start is an error (the server does not start); one that
    becomes unreadable later keeps the last list that could be read, and each failed read
    is logged, so an edit with a mistake in it does not lift every refusal at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._list: Denylist | None = None

    def read(self) -> Denylist:
        with self._lock:
            try:
                stat = self.path.stat()
                key = (stat.st_mtime_ns, stat.st_size)
                if key != self._key or self._list is None:
                    self._list = Denylist.from_file(self.path)
                    self._key = key
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                if self._list is None:
                    raise ValueError(
                        f"cannot read the denylist file {self.path}: {reason}; "
                        "fix PHONEFLOW_DENYLIST_FILE or create the file"
                    ) from exc
                _log.error(
                    "the denylist file %s cannot be read (%s): the last list read (%d entries) stays",
                    self.path,
                    reason,
                    len(self._list),
                )
            return self._list


def data_dir() -> Path:
    """Where the server keeps its default database: `$PHONEFLOW_DATA_DIR`, else the
    user's data folder (`~/.local/share/phoneflow` on Linux). The same for every command and every
    working directory, so that `admin create-account` and `serve` find one database."""
    configured = os.environ.get("PHONEFLOW_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(platformdirs.user_data_dir("phoneflow", appauthor=False))


def default_database_url() -> str:
    """The embedded default: `phoneflow.db` in `data_dir()`, its folder created."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'phoneflow.db'}"


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="PHONEFLOW_", extra="ignore")

    database_url: str = Field(
        default_factory=default_database_url,
        validation_alias=AliasChoices("PHONEFLOW_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; postgresql:// URLs use the psycopg 3 driver.",
    )
    denylist_file: Path | None = Field(
        default=None, description="The global package denylist: one name or glob a line, '#' comments."
    )
    max_body_bytes: int = Field(
        default=4 * MIB, ge=1024, description="Largest request body accepted (a full runs.report batch fits)."
    )
    artifact_max_bytes: int = Field(
        default=10 * MIB,
        ge=1024,
        description="Largest run artifact accepted (its upload may exceed max_body_bytes).",
    )
    artifact_store: Literal["directory", "s3"] = Field(
        default="directory",
        description="Where artifacts' bytes go: a folder (artifact_dir) or an S3-compatible bucket (s3_*).",
    )
    artifact_dir: Path | None = Field(
        default=None, description="The folder of the directory store; none: `artifacts` in the data folder."
    )
    s3_bucket: str | None = Field(default=None, description="The bucket of the S3 store (it must exist).")
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible server (MinIO, Ceph, R2...); none: AWS S3."
    )
    s3_region: str | None = Field(default=None, description="The bucket's region (AWS S3).")
    s3_access_key_id: str | None = Field(
        default=None,
        description="With s3_secret_access_key; none: boto3's own chain (AWS_* variables, roles).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="The secret of s3_access_key_id (never logged nor shown)."
    )
    s3_prefix: str = Field(default="", description="A folder in the bucket the artifacts go under.")
    artifact_quota_free_bytes: int = Field(
        default=1024 * MIB, ge=0, description="Artifact bytes an account on the free plan may keep."
    )
    artifact_quota_pro_bytes: int = Field(
        default=20 * 1024 * MIB, ge=0, description="Artifact bytes an account on the pro plan may keep."
    )
    artifact_quota_team_bytes: int = Field(
        default=100 * 1024 * MIB, ge=0, description="Artifact bytes an account on the team plan may keep."
    )
    run_video: bool = Field(
        default=True,
        description=(
            "Assemble each ended run's frames into one video (`video.mp4`, H.264) in the background."
        ),
    )
    db_pool_size: int = Field(
        default=5, ge=1, description="Database connections each server process keeps open."
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description=(
            "Extra connections a process may open under load. Every process (and `phoneflow serve` "
            "is one) may hold pool size + overflow + 1 (PostgreSQL's event listener): keep the sum over "
            "all processes below PostgreSQL's max_connections (100 by default)."
        ),
    )
    db_pool_timeout_s: float = Field(
        default=30,
        gt=0,
        description="How long a request waits for a free pooled connection before it is answered 503.",
    )
    public_url: str = Field(default="http://127.0.0.1:8000", description="How clients reach this server.")
    run_migrations: bool = Field(
        default=True,
        description=(
            "Upgrade the schema when the server starts (false: it refuses a database the migrations "
            "have not reached, saying how to upgrade it)."
        ),
    )
    start_scheduler: bool = Field(
        default=True, description="Run background jobs (retention, schedules, webhook deliveries)."
    )
    schedule_poll_s: float = Field(
        default=5, gt=0, le=60, description="How often due cron schedules are looked for (seconds)."
    )
    log_level: str = Field(
        default="INFO", description="The least level logged (DEBUG, INFO, WARNING, ERROR), to stderr."
    )
    pairing_code_ttl_s: int = Field(default=600, ge=10, description="How long a pairing code lives.")
    pairing_max_failures: int = Field(
        default=10,
        ge=1,
        description="Wrong pairing codes allowed per source IP (and per account) per window.",
    )
    pairing_failure_window_s: int = Field(
        default=600, ge=1, description="The window (seconds) wrong pairing codes are counted in."
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often due webhook deliveries are looked for (seconds)."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="How long a webhook endpoint may take to answer."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts of a webhook delivery before it is given up (failed)."
    )
    webhook_retry_base_s: float = Field(
        default=10.0, gt=0, description="The wait after a first failed attempt; it doubles with each failure."
    )
    webhook_retry_max_s: float = Field(default=3600.0, gt=0, description="The longest wait between attempts.")
    webhook_concurrency: int = Field(
        default=4, ge=1, le=32, description="Webhook requests one server process makes at once."
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description=(
            "Let webhooks (and simulated action.http steps, with simulate_live_http) reach loopback, "
            "private and reserved addresses (receivers inside your network). Off: an account could "
            "otherwise make the server call services of its network and read their answers; turn on "
            "only where every account is trusted. Link-local addresses (cloud metadata services) are "
            "refused either way."
        ),
    )
    device_offline_after_s: float = Field(
        default=300, ge=1, description="A device silent this long is offline (the device.offline webhook)."
    )
    bridge_command_timeout_s: float = Field(
        default=30,
        gt=0,
        le=600,
        description="How long a command to a device's bridge (inspect, click) may take before it expires.",
    )
    bridge_listening_within_s: float = Field(
        default=45,
        gt=0,
        description=(
            "A bridge that has not asked for commands this long is not running: commands for its device are "
            "refused at once (its long polls last at most 30 s)."
        ),
    )
    command_poll_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description=(
            "How often a waiting long poll looks into the database for a command or an answer that another "
            "server process took (within one process it is woken at once)."
        ),
    )
    claim_recheck_interval_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description=(
            "How often a bridge's wake-up poll (GET /devices/me/wakeup?wait=N) looks into the database "
            "unwoken: a retry's backoff ending wakes nobody (a run queued on any process wakes it at once)."
        ),
    )
    run_lease_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description=(
            "How long a bridge that asks for it may start a run's steps without asking the step gate "
            "(its lease): fewer requests a run; a cancel or pause is answered once the leases it must "
            "outlast have run out, so this is also the longest a cancel or pause waits. 0: the bridge "
            "asks before every step."
        ),
    )
    smtp_host: str | None = Field(
        default=None, description="The SMTP server approvers are e-mailed through; none: no approval e-mails."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="The SMTP server's port.")
    smtp_username: str | None = Field(default=None, description="Log in with this user (and smtp_password).")
    smtp_password: SecretStr | None = Field(default=None, description="The password of smtp_username.")
    smtp_from: str = Field(default="phoneflow@localhost", description="The From address of approval e-mails.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    smtp_ssl: bool = Field(default=False, description="Connect with TLS from the start (port 465).")
    smtp_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="How long the SMTP server may take to answer (seconds)."
    )
    smtp_poll_s: float = Field(default=2.0, gt=0, le=60, description="How often due e-mails are looked for.")
    hook_rate_per_minute: int = Field(
        default=60,
        ge=1,
        le=6000,
        description="Calls a minute an incoming hook takes unless it says otherwise.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The bearer token /metrics asks of scrapers (none, and not public: /metrics is off).",
    )
    metrics_public: bool = Field(
        default=False, description="Serve /metrics to anyone, without a token (a private network only)."
    )
    simulate_live_http: bool = Field(
        default=False,
        description="Let simulated action.http steps make real requests (off: they get a canned 200).",
    )

    _denylist_reader: _DenylistFile | None = PrivateAttr(default=None)
    # Whether the notices of a start (approval e-mails are off ...) were given for the app's process:
    # `phoneflow serve` gives them once, not once for each of its processes.
    _notices_given: bool = PrivateAttr(default=False)

    @property
    def notices_given(self) -> bool:
        return self._notices_given

    def with_notices_given(self) -> Settings:
        """These settings, for an app whose start's notices were given already."""
        settings = self.model_copy()
        settings._notices_given = True
        return settings

    @property
    def global_denylist(self) -> Denylist:
        """The denylist from `denylist_file` (empty when none is configured), as the file reads now."""
        if self.denylist_file is None:
            return Denylist()
        if self._denylist_reader is None or self._denylist_reader.path != self.denylist_file:
            self._denylist_reader = _DenylistFile(self.denylist_file)
        return self._denylist_reader.read()
