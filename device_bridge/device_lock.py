"""One bridge per phone: an OS-level lock file per adb serial.

A phone has one UiAutomation client, so two bridges driving the same serial would fight
over it. `fcntl.flock` is held by the open file: the kernel drops it when the process
ends, however it ends (kill -9 included), so a crashed bridge never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import IO

from device_bridge.errors import DeviceBusyError


def _lock_name(serial: str) -> str:
    # Serials may hold ':' and '.' (network devices); keep the file name plain.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", serial) + ".lock"


class SerialLock:
    """The held lock of one serial. Release with `release()` (or let the process end)."""

    def __init__(self, serial: str, path: Path, handle: IO[str]) -> None:
        self.serial = serial
        self.path = path
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, lock_dir: Path, serial: str) -> SerialLock:
        """Take the lock of `serial`, or raise `DeviceBusyError` naming the holder."""
        lock_dir.mkdir(parents=True, exist_ok=True)
        path = lock_dir / _lock_name(serial)
        handle = open(path, "a+", encoding="utf-8")  # held open: the lock lives as long as the handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DeviceBusyError(serial, str(path), holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        return cls(serial, path, handle)

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
