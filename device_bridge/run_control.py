"""What a served run obeys while it moves: the server's denylist (`LiveDenylist`) and its step gate
(`ServerRunControl`).

Before every step the engine asks `ServerRunControl.before_step`, which asks the server
(`POST /api/v1/devices/me/runs/{id}/gate`, over the worker's kept-alive HTTP client, with a
short timeout) whether a cancel was accepted and which denylist version is in force:

- a cancel the server accepted → CANCEL: the step is not started, the run ends `cancelled`;
- a paused run (`"paused": true`) → PAUSE: the engine holds the run between steps and asks again
  every half second until the server answers otherwise (resumed → GO, cancelled → CANCEL);
- another denylist version → the list is fetched again (`GET /api/v1/devices/me/config`) and
  applies from this step on; when it cannot be fetched the run is stopped (`failed`) rather
  than go on under a list known to be outdated;
- with a `progress` reporter, the run's progress since the last step rides on the gate (`report`,
  once the server's gate said `acceptsReport`): one request per step instead of a gate and a
  report; what the gate did not carry is queued by the reporter as before (reporting.py);
- no answer (server down, timeout, an error status) → the step starts: the run goes on offline
  with the list it has, and a cancel takes effect as soon as the bridge hears it (the next gate
  that answers, a heartbeat, or a `runs.report` answer); a paused run stays held. After a failed
  ask the gate is not asked again for a while (backoff), so an unreachable server does not slow
  every step by its timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from device_bridge.errors import ServerError
from device_bridge.reporting import ProgressReporter, Snapshot
from device_bridge.server_api import DeviceApi, ServerDenylist
from device_bridge.uploader import Backoff
from interpreter.control import RunHalted, StepDecision
from interpreter.denylist import Denylist

log = logging.getLogger(__name__)

CONFIG_TRIES = 3


class LiveDenylist:
    """A device's denylist: the server's effective list (with its version) plus the bridge's local
    additions (`PHONEFLOW_BRIDGE_DENYLIST_FILE`, which can only add). Swapped whole when the
    server's version changes; the engine reads it at every check, so a change applies to the
    following steps of a run in flight."""

    def __init__(self, local: Denylist | None = None) -> None:
        self.local = local or Denylist()
        self._lock = threading.Lock()
        self._server: ServerDenylist | None = None
        self._combined = self.local

    @property
    def version(self) -> str | None:
        """The server version in force, or None before the server sent one."""
        server = self._server
        return server.version if server is not None else None

    def apply(self, server: ServerDenylist) -> None:
        combined = Denylist(server.patterns) + self.local
        with self._lock:
            self._server = server
            self._combined = combined

    def current(self) -> Denylist:
        return self._combined

    def match(self, package: str) -> str | None:
        return self._combined.match(package)

    def denies(self, package: str) -> bool:
        return self._combined.denies(package)

    def __len__(self) -> int:
        return len(self._combined)


class ServerRunControl:
    """The engine's `RunControl` for one served run (see the module docstring)."""

    def __init__(
        self,
        api: DeviceApi,
        run_id: str,
        denylist: LiveDenylist,
        *,
        cancelled: Callable[[], bool],
        timeout_s: float,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: ProgressReporter | None = None,
    ) -> None:
        self.api = api
        self.run_id = run_id
        self.denylist = denylist
        self.cancelled = cancelled
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff(0.5, 10.0)
        self.sleep = sleep
        self.asked = 0
        self.unanswered = 0
        self.paused = False  # the server's last answer: hold before the next step
        # Whether someone watches the run live (the last gate's answer): frames between steps too.
        self.live = False
        self._quiet_until = 0.0
        self.progress = progress
        self.carried = 0  # gates that carried the run's progress

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        if self.cancelled():
            return StepDecision.CANCEL
        if time.monotonic() < self._quiet_until:
            # The server did not answer a moment ago: go on offline (a paused run stays held).
            return StepDecision.PAUSE if self.paused else StepDecision.GO
        self.asked += 1
        step: dict[str, Any] = {"seq": seq, "nodeId": node_id}
        snapshot = None
        if self.progress is not None and self.progress.carry_on_gate:
            snapshot = self.progress.for_gate()
        try:
            answer = self.api.gate(
                self.run_id, self.timeout_s, step, snapshot.body if snapshot is not None else None
            )
        except ServerError as exc:
            self.unanswered += 1
            delay = self.backoff.next_delay()
            self._quiet_until = time.monotonic() + delay
            log.warning(
                "run %s: the step gate did not answer before step %d (%s); the run goes on offline "
                "and a cancel takes effect when it is heard (next ask in %.1f s)",
                self.run_id,
                seq,
                exc,
                delay,
            )
            return StepDecision.PAUSE if self.paused else StepDecision.GO
        self.backoff.reset()
        self.live = answer.get("live") is True
        if self.progress is not None:
            self._settle_progress(answer, snapshot)
        if answer.get("cancelRequested") is True:
            return StepDecision.CANCEL
        version = answer.get("denylistVersion")
        if isinstance(version, str) and version != self.denylist.version:
            self._refresh(version, seq)
        self.paused = answer.get("paused") is True
        return StepDecision.PAUSE if self.paused else StepDecision.GO

    def _settle_progress(self, answer: dict[str, Any], snapshot: Snapshot | None) -> None:
        assert self.progress is not None
        # An older server's gate says nothing of reports: the reporter queues progress as always.
        self.progress.carry_on_gate = answer.get("acceptsReport") is True
        if snapshot is None:
            return
        carried = answer.get("report")
        result = carried.get("result") if isinstance(carried, dict) else None
        if result in ("stored", "unchanged"):
            self.carried += 1
            self.progress.carried(snapshot)
        else:  # the reporter's ticker queues it: the outbox's answer handling says what is wrong
            log.warning("run %s: the step gate did not take the run's progress (%s)", self.run_id, carried)

    def _refresh(self, version: str, seq: int) -> None:
        problem: ServerError | None = None
        for attempt in range(CONFIG_TRIES):
            try:
                self.denylist.apply(self.api.config())
                log.info("run %s: the package denylist is now version %s", self.run_id, self.denylist.version)
                return
            except ServerError as exc:
                problem = exc
                self.sleep(0.2 * (attempt + 1))
        raise RunHalted(
            f"the package denylist changed on the server (version {version}) and this bridge could not "
            f"fetch it ({problem}); the run was stopped before step {seq} so that no step runs under an "
            "outdated list: trigger it again once the bridge reaches the server"
        )
