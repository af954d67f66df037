"""An idle device's wake-up: one thread per device holds the server's long poll
(`GET /api/v1/devices/me/wakeup?wait=N`) while the device's worker has nothing to run, and nudges
the worker to claim as soon as the server says a run is queued for it.

The poll only wakes; the worker's claim (`POST /devices/me/claim`) is what takes a run, once. So a
poll cut short (the server restarts, the network drops) loses nothing: while the poll fails the
worker claims every `claim_interval_s`, as it does with a server older than the bridge (404).
"""

from __future__ import annotations

import logging
import threading

from device_bridge.errors import ServerError, ServerRefusedError
from device_bridge.server_api import DeviceApi
from device_bridge.uploader import Backoff

log = logging.getLogger(__name__)

# While the poll works, the worker still claims this often without a nudge (a lost wake-up).
IDLE_CLAIM_INTERVAL_S = 10.0
# How often the thread looks whether the bridge stops while the worker is busy.
IDLE_TICK_S = 0.5


class Waker:
    """Holds one device's wake-up poll while its worker is idle (`serve` runs in its own thread)."""

    def __init__(
        self, api: DeviceApi, stop: threading.Event, *, wait_s: float, backoff: Backoff, serial: str
    ) -> None:
        self.api = api
        self.stop = stop
        self.wait_s = wait_s
        self.backoff = backoff
        self.serial = serial
        # Set by the worker when a claim found nothing; cleared when a poll says a run is queued.
        self._idle = threading.Event()
        # Set when the worker should claim now (a run is queued, or the bridge stops).
        self._nudge = threading.Event()
        # Whether the last poll reached a server that waits (else the worker polls claims).
        self.listening = False
        self.wakeups = 0

    def wait_for_work(self, poll_interval_s: float) -> None:
        """Called by the worker after a claim that found nothing: returns when it should claim again."""
        self._nudge.clear()
        if self.stop.is_set():  # the bridge stops: `interrupt` may have come before the clear above
            return
        self._idle.set()
        self._nudge.wait(max(IDLE_CLAIM_INTERVAL_S, poll_interval_s) if self.listening else poll_interval_s)

    def interrupt(self) -> None:
        """Let a waiting worker go on at once (the bridge stops)."""
        self._nudge.set()

    def serve(self) -> None:
        while not self.stop.is_set():
            if not self._idle.wait(IDLE_TICK_S):
                continue
            try:
                queued = self.api.wakeup(self.wait_s)
            except ServerError as exc:
                self.listening = False
                delay = self.backoff.next_delay()
                if isinstance(exc, ServerRefusedError) and exc.status_code == 404:
                    delay = max(delay, 60.0)  # a server older than this bridge: the worker polls claims
                log.warning(
                    "device %s: wake-up: %s; claims are polled; next try in %.1f s", self.serial, exc, delay
                )
                self.stop.wait(delay)
                continue
            self.backoff.reset()
            self.listening = True
            if queued:
                self.wakeups += 1
                self._idle.clear()
                self._nudge.set()
