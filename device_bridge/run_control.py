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

A server that grants leases (`grantsLease`) answers a gate with `leaseMs`: until it runs out
(counted from before the request was sent, less a tenth for clocks) the following steps start
without asking — the server answers a cancel, a pause or a denylist change only once the leases
it must outlast have run out, so none of them is missed. The progress of leased steps goes out
with the reporter's ticker (runs.report, at most `interval_s` late), and a leased step that runs
longer than `ANNOUNCE_AFTER_S` is announced from the ticker's thread (a gate naming it, which
also renews the lease and hears a cancel or a pause early), so the run's page shows the step in
flight all the same.
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
# A leased step still going after this long is announced as the step in flight (see the docstring).
ANNOUNCE_AFTER_S = 0.3
# The share of a lease the bridge uses: its clock and the server's may run at slightly different rates.
LEASE_SHARE = 0.9


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
        lease: tuple[float, int] | None = None,
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
        # The lease (monotonic clock): until then steps start without asking. The ticker's announcement
        # may renew it or end it (a cancel, a pause or another denylist heard), hence the lock.
        self._lease_lock = threading.Lock()
        self._lease_until = 0.0
        self.leased = 0  # steps started under the lease, without asking
        self._cancel_heard = False
        # The leased step in flight, not yet announced: (seq, node id, when it started).
        self._unannounced: tuple[int, str, float] | None = None
        if progress is not None:
            progress.on_tick = self._announce_long_step
        if lease is not None:  # the claim's: `(monotonic time before it was asked, ms)`
            self._take_lease({"leaseMs": lease[1]}, lease[0])
            if progress is not None:
                # A server that grants leases takes progress on its gate too (it came first): the
                # reporter holds the leased steps' progress for the next gate or its ticker.
                progress.carry_on_gate = True

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        if self.cancelled() or self._cancel_heard:
            return StepDecision.CANCEL
        now = time.monotonic()
        with self._lease_lock:
            self._unannounced = None
            if now < self._lease_until and not self.paused:
                self.leased += 1
                self._unannounced = (seq, node_id, now)
                return StepDecision.GO
        if now < self._quiet_until:
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
        if not self.paused:
            self._take_lease(answer, now)
        return StepDecision.PAUSE if self.paused else StepDecision.GO

    def _take_lease(self, answer: dict[str, Any], asked_at: float) -> None:
        """Keep the lease a gate answer granted (`leaseMs`), counted from `asked_at` (before the ask)."""
        lease_ms = answer.get("leaseMs")
        if isinstance(lease_ms, int) and not isinstance(lease_ms, bool) and lease_ms > 0:
            with self._lease_lock:
                self._lease_until = max(self._lease_until, asked_at + LEASE_SHARE * lease_ms / 1000)

    def _announce_long_step(self) -> None:
        """From the reporter's ticker: a leased step still going after `ANNOUNCE_AFTER_S` is announced to
        the server as the step in flight; its answer renews the lease or ends it (cancel, pause, another
        denylist: the next step asks the gate)."""
        with self._lease_lock:
            pending = self._unannounced
            if pending is None or time.monotonic() - pending[2] < ANNOUNCE_AFTER_S:
                return
            self._unannounced = None
            # The lease is set aside while the announcement is asked: its answer may tell of a cancel
            # that the server, once it has answered, counts as heard. A step that comes meanwhile asks
            # the gate itself (after the announcement, on the same connection), which tells it too.
            self._lease_until = 0.0
        seq, node_id, _ = pending
        asked_at = time.monotonic()
        try:
            answer = self.api.gate(self.run_id, self.timeout_s, {"seq": seq, "nodeId": node_id})
        except ServerError as exc:
            # Its answer may have told of a cancel that the server now counts as heard: the next step
            # asks the gate rather than go on under the lease.
            log.info("run %s: announcing step %d failed (%s); the run goes on", self.run_id, seq, exc)
            return
        self.live = answer.get("live") is True
        version = answer.get("denylistVersion")
        stale = isinstance(version, str) and version != self.denylist.version
        if answer.get("cancelRequested") is True:
            self._cancel_heard = True
        if answer.get("cancelRequested") is True or answer.get("paused") is True or stale:
            return  # no lease: the next step asks the gate, which says what to do
        self._take_lease(answer, asked_at)

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
