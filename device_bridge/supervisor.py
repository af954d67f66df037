"""Keeps the bridge's threads alive: a thread that dies is logged, restarted with backoff, and counted.

    supervisor = Supervisor(stop, Backoff(0.5, 30))
    slot = supervisor.add("device-emulator-5554", worker.serve)
    supervisor.start_all()
    ...                     # then, every tick: supervisor.check()

A thread "dies" when its target raises, or returns while the bridge is not stopping. The
slot keeps how often it was restarted and the last error, which the bridge reports in its
heartbeats (`health()`), so a person sees it on the server, not only in the bridge's log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from device_bridge.uploader import Backoff
from interpreter.trace import iso_utc

log = logging.getLogger(__name__)

# A restarted thread that has lived this long is healthy again: its backoff starts over.
HEALTHY_AFTER_S = 60.0


@dataclass
class ThreadSlot:
    name: str
    target: Callable[[], None]
    backoff: Backoff
    stop: threading.Event
    thread: threading.Thread | None = None
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    restart_at: float | None = None
    started_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.target()
        except BaseException as exc:  # recorded and restarted by the supervisor; never lost silently
            self._note(f"{type(exc).__name__}: {exc}")
            log.exception("thread %s died; the supervisor restarts it", self.name)
            return
        if not self.stop.is_set():
            self._note("the thread returned while the bridge was not stopping")
            log.error("thread %s ended on its own; the supervisor restarts it", self.name)

    def _note(self, error: str) -> None:
        with self._lock:
            self.last_error = error
            self.last_error_at = datetime.now(UTC)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "restarts": self.restarts,
                "lastError": self.last_error,
                "lastErrorAt": iso_utc(self.last_error_at) if self.last_error_at else None,
                "alive": self.alive,
            }


class Supervisor:
    def __init__(self, stop: threading.Event, backoff_base_s: float, backoff_max_s: float) -> None:
        self.stop = stop
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.slots: list[ThreadSlot] = []

    def add(self, name: str, target: Callable[[], None]) -> ThreadSlot:
        slot = ThreadSlot(name, target, Backoff(self.backoff_base_s, self.backoff_max_s), self.stop)
        self.slots.append(slot)
        return slot

    def start_all(self) -> None:
        for slot in self.slots:
            slot.start()

    def check(self) -> None:
        """One pass: schedule the restart of each dead thread, restart those whose wait is over."""
        if self.stop.is_set():
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.alive:
                if slot.restarts and now - slot.started_at > HEALTHY_AFTER_S:
                    slot.backoff.reset()
                continue
            if slot.restart_at is None:
                delay = slot.backoff.next_delay()
                slot.restart_at = now + delay
                log.error(
                    "thread %s is dead (%s): restarting it in %.1f s", slot.name, slot.last_error, delay
                )
            elif now >= slot.restart_at:
                slot.restarts += 1
                log.warning("restarting thread %s (restart %d)", slot.name, slot.restarts)
                slot.start()

    def join(self, timeout: float | None = None) -> None:
        for slot in self.slots:
            if slot.thread is not None:
                slot.thread.join(timeout)
