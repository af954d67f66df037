"""The bridge's local state: which devices are paired with which server, and their tokens.

A small SQLite file in the state directory (mode 0600: it holds device tokens, which the
bridge must send as they are, so they cannot be hashed here).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from device_bridge.errors import NotPairedError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paired_devices (
    serial      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    token       TEXT NOT NULL,
    server_url  TEXT NOT NULL,
    paired_at   TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class PairedDevice:
    serial: str
    device_id: str
    token: str
    server_url: str
    paired_at: str


class BridgeState:
    """Paired devices, keyed by adb serial. Each call opens and closes its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)
        os.chmod(path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def save_pairing(self, serial: str, device_id: str, token: str, server_url: str) -> PairedDevice:
        """Remember a pairing; pairing a serial again replaces the old one."""
        paired = PairedDevice(serial, device_id, token, server_url.rstrip("/"), datetime.now(UTC).isoformat())
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO paired_devices VALUES (?, ?, ?, ?, ?)",
                (paired.serial, paired.device_id, paired.token, paired.server_url, paired.paired_at),
            )
        return paired

    def devices(self) -> list[PairedDevice]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM paired_devices ORDER BY serial").fetchall()
        return [PairedDevice(*row) for row in rows]

    def device(self, serial: str) -> PairedDevice:
        """The pairing of `serial`; raises `NotPairedError` when there is none."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM paired_devices WHERE serial = ?", (serial,)).fetchone()
        if row is None:
            raise NotPairedError(serial, str(self.path))
        return PairedDevice(*row)

    def by_device_id(self, device_id: str) -> PairedDevice | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM paired_devices WHERE device_id = ?", (device_id,)).fetchone()
        return PairedDevice(*row) if row else None

    def forget(self, serial: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM paired_devices WHERE serial = ?", (serial,)).rowcount > 0
