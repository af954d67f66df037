"""Phones paired while the bridge runs: which pairings of the state folder the bridge does not serve
yet, and when to try again one whose phone could not be opened.

A bridge started without `--serial` serves every phone paired in its state folder, including those
paired after it started (`phoneflow bridge pair` writes the same state database): the supervisor
asks `PairingWatcher.new_pairings()` every `RESCAN_S` and starts a worker for each phone it opens.
A phone that cannot be opened now (not plugged in, held by another bridge) is tried again after
`RETRY_S`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from device_bridge.state import BridgeState, PairedDevice

log = logging.getLogger(__name__)

RESCAN_S = 2.0
RETRY_S = 10.0


class PairingWatcher:
    def __init__(
        self, state: BridgeState, server_url: str | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state = state
        self.server_url = server_url.rstrip("/") if server_url else None
        self.clock = clock
        self._next_scan = 0.0
        self._retry_at: dict[str, float] = {}
        self._told: set[str] = set()

    def new_pairings(self, served: Collection[str]) -> list[PairedDevice]:
        """Pairings (by device id) not in `served` that are due to be tried; [] between scans."""
        now = self.clock()
        if now < self._next_scan:
            return []
        self._next_scan = now + RESCAN_S
        found = []
        for paired in self.state.devices():
            if paired.device_id in served or now < self._retry_at.get(paired.device_id, 0.0):
                continue
            if self.server_url and paired.server_url.rstrip("/") != self.server_url:
                if paired.device_id not in self._told:
                    self._told.add(paired.device_id)
                    log.warning(
                        "device %s is paired with %s, not this bridge's server %s: not served here",
                        paired.serial,
                        paired.server_url,
                        self.server_url,
                    )
                continue
            found.append(paired)
        return found

    def failed(self, paired: PairedDevice, problem: str) -> None:
        """The phone of `paired` could not be opened: try it again after `RETRY_S`."""
        self._retry_at[paired.device_id] = self.clock() + RETRY_S
        log.warning(
            "device %s was paired but cannot be served yet (%s); trying again", paired.serial, problem
        )
