"""Time as the engine sees it.

The engine never calls `time` directly: it asks a `Clock`. On a phone that is the
wall clock; in the simulator it is a `VirtualClock`, so waits, retries and timeouts
cost no real time and a builder preview returns at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def now(self) -> datetime:
        """The current UTC time (for `startedAt`)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block this run for `seconds`."""
        ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._elapsed += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)
