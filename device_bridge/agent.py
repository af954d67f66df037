"""The agent: serves paired devices for a server (`phoneflow bridge run`).

One worker thread per device: it says it is alive (heartbeat), claims the device's queued
runs one at a time, runs each with the engine on the phone's driver (`devices.open_device`:
uiautomator2 or Appium), and reports progress and the result through the outbox. One
uploader thread empties the outbox. When a step fails, the worker keeps a screenshot and the
window hierarchy of that moment as the run's artifacts (failure context); they are uploaded
after the run's report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from device_bridge.approvals import ServerApprovals
from device_bridge.devices import BridgeDevice, open_device
from device_bridge.errors import BridgeConfigError, DeviceBusyError, ServerError, ServerRefusedError
from device_bridge.outbox import Outbox
from device_bridge.reporting import ProgressReporter, base_fields, interrupted_report
from device_bridge.server_api import ClaimedRun, DeviceApi
from device_bridge.settings import BridgeSettings
from device_bridge.state import BridgeState, PairedDevice
from device_bridge.uploader import Backoff, Credentials, Uploader
from interpreter.denylist import Denylist
from interpreter.device import Artifact
from interpreter.engine import RunResult, run_workflow
from interpreter.trace import Outcome, TraceEvent

log = logging.getLogger(__name__)

DeviceOpener = Callable[[str], BridgeDevice]


def load_denylist(settings: BridgeSettings) -> Denylist:
    if settings.denylist_file is None:
        return Denylist()
    try:
        return Denylist.from_file(settings.denylist_file)
    except (OSError, ValueError) as exc:
        raise BridgeConfigError(f"denylist file {settings.denylist_file}: {exc}") from exc


class FailureContext:
    """Keeps a screenshot and the window hierarchy when a step fails (on the engine's thread)."""

    def __init__(
        self, device: BridgeDevice, outbox: Outbox, run_id: str, device_id: str, max_bytes: int
    ) -> None:
        self.device = device
        self.outbox = outbox
        self.run_id = run_id
        self.device_id = device_id
        self.max_bytes = max_bytes
        self.kept: list[str] = []

    def on_event(self, event: TraceEvent) -> None:
        if event.outcome is not Outcome.FAILED:
            return
        stem = f"failure-{event.seq}-{event.node_id}"
        try:
            shot = self.device.screenshot()
            xml = self.device.hierarchy_xml().encode("utf-8")
        except Exception as exc:  # the device may be why the step failed: the report matters more
            log.warning("run %s: no failure context for step %s: %s", self.run_id, event.seq, exc)
            return
        for artifact in (
            Artifact(f"{stem}.png", shot.content_type, shot.data),
            Artifact(f"{stem}-hierarchy.xml", "application/xml", xml),
        ):
            if len(artifact.data) <= self.max_bytes:
                self.outbox.add_artifact(self.run_id, self.device_id, artifact)
                self.kept.append(artifact.name)


class DeviceWorker:
    """Serves one paired device until `stop` is set."""

    def __init__(
        self,
        paired: PairedDevice,
        device: BridgeDevice,
        outbox: Outbox,
        settings: BridgeSettings,
        stop: threading.Event,
        *,
        client: httpx.Client | None = None,
        denylist: Denylist | None = None,
        cancel_ids: set[str] | None = None,
    ) -> None:
        self.paired = paired
        self.device = device
        self.outbox = outbox
        self.settings = settings
        self.stop = stop
        self.denylist = denylist or Denylist()
        self.client = client or httpx.Client(timeout=settings.http_timeout_s)
        self.api = DeviceApi(self.client, paired.server_url, paired.token)
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self.runs_done = 0
        # Runs the server asked to cancel (from heartbeats and runs.report answers).
        self._cancel_ids: set[str] = cancel_ids if cancel_ids is not None else set()
        self._next_heartbeat = 0.0

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                self._heartbeat_if_due()
                claimed = self.api.claim()
            except ServerError as exc:
                delay = self.backoff.next_delay()
                if isinstance(exc, ServerRefusedError) and exc.status_code in (401, 403):
                    delay = max(delay, self.settings.backoff_max_s)
                log.warning("device %s: %s; next try in %.1f s", self.paired.serial, exc, delay)
                self.stop.wait(delay)
                continue
            self.backoff.reset()
            if claimed is None:
                self.stop.wait(self.settings.claim_interval_s)
                continue
            self.execute(claimed)

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        answer = self.api.heartbeat()
        self._next_heartbeat = now + self.settings.heartbeat_interval_s
        for run_id in answer.get("cancelRunIds", []) or []:
            self._cancel_ids.add(str(run_id))

    def execute(self, claimed: ClaimedRun) -> RunResult:
        """Run one claimed run to its end and queue its reports (and failure context)."""
        device_id = self.paired.device_id
        base = base_fields(claimed.run, device_id)
        reporter = ProgressReporter(self.outbox, device_id, base, self.settings.progress_interval_s)
        context = FailureContext(
            self.device, self.outbox, claimed.run_id, device_id, self.settings.max_artifact_bytes
        )

        def on_event(event: TraceEvent) -> None:
            reporter.on_event(event)
            context.on_event(event)

        def should_cancel() -> bool:
            return claimed.run_id in self._cancel_ids or self.stop.is_set()

        # Approval nodes wait for people, who answer through the server (dashboard or API).
        approvals = ServerApprovals(
            self.api,
            should_cancel=should_cancel,
            poll_interval_s=self.settings.approval_poll_interval_s,
            backoff=Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
        )
        log.info("device %s: running %s", self.paired.serial, claimed.run_id)
        result = run_workflow(
            claimed.definition,
            self.device,
            inputs=claimed.run.get("inputs") or {},
            run_id=claimed.run_id,
            denylist=self.denylist,
            on_event=on_event,
            on_status=reporter.on_status,
            should_cancel=should_cancel,
            approvals=approvals,
        )
        reporter.finish(result)
        for index, artifact in enumerate(result.artifacts, start=1):
            name = (
                f"screenshot-{index}.png"
                if artifact.content_type == "image/png"
                else f"{index}-{artifact.name}"
            )
            if len(artifact.data) <= self.settings.max_artifact_bytes:
                self.outbox.add_artifact(
                    claimed.run_id, device_id, Artifact(name, artifact.content_type, artifact.data)
                )
        self.runs_done += 1
        log.info("device %s: run %s ended %s", self.paired.serial, claimed.run_id, result.status.value)
        return result


class Agent:
    """Serves the given paired serials (all paired devices when none are given)."""

    def __init__(
        self, settings: BridgeSettings, serials: Sequence[str] = (), *, opener: DeviceOpener | None = None
    ) -> None:
        settings.ensure_state_dir()
        self.settings = settings
        self.state = BridgeState(settings.state_db)
        paired = [self.state.device(s) for s in serials] if serials else self.state.devices()
        if not paired:
            raise BridgeConfigError(
                f"no paired device in {settings.state_db}: pair one with "
                "`phoneflow bridge pair --server URL --code CODE --serial SERIAL`"
            )
        if settings.server_url:
            wanted = settings.server_url.rstrip("/")
            other = [p.serial for p in paired if p.server_url != wanted]
            if other:
                raise BridgeConfigError(
                    f"device(s) {', '.join(other)} are paired with another server than {wanted}: "
                    "pair them with this server, or leave --server out to use the one they were paired with"
                )
        self.paired = paired
        self.opener = opener or (lambda serial: open_device(serial, settings))
        self.outbox = Outbox(settings.outbox_db)
        self.stop = threading.Event()
        self.cancel_ids: set[str] = set()
        self.uploader = Uploader(
            self.outbox,
            self._credentials,
            batch_size=settings.upload_batch_size,
            max_batch_bytes=settings.upload_max_batch_bytes,
            backoff=Backoff(settings.backoff_base_s, settings.backoff_max_s),
            timeout_s=settings.http_timeout_s,
            on_answer=self._on_answer,
        )
        self.denylist = load_denylist(settings)
        self.workers: list[DeviceWorker] = []
        self._threads: list[threading.Thread] = []

    def _on_answer(self, run_id: str, answer: dict[str, Any]) -> None:
        if answer.get("cancelRequested"):
            self.cancel_ids.add(run_id)

    def _credentials(self, device_id: str) -> Credentials | None:
        paired = self.state.by_device_id(device_id)
        return Credentials(paired.server_url, paired.token) if paired else None

    def end_interrupted_runs(self) -> int:
        """Report as failed the runs a previous bridge left in flight here (killed, crashed)."""
        serving = {p.device_id for p in self.paired}
        ended = 0
        for device_id, snapshot in self.outbox.runs_in_flight():
            if device_id in serving:
                self.outbox.enqueue(interrupted_report(snapshot), device_id, in_flight=False)
                log.warning("run %s was left in flight by a stopped bridge: reported failed", snapshot["id"])
                ended += 1
        return ended

    def start(self) -> None:
        """Open every device (refused when another bridge holds one), end runs a dead bridge
        left in flight, and start the threads."""
        devices: list[BridgeDevice] = []
        try:
            for paired in self.paired:
                devices.append(self.opener(paired.serial))
        except DeviceBusyError:
            for device in devices:
                device.close()
            raise
        # Only now that we hold every device's lock: no other bridge is running these runs.
        self.end_interrupted_runs()
        for paired, device in zip(self.paired, devices, strict=True):
            worker = DeviceWorker(
                paired,
                device,
                self.outbox,
                self.settings,
                self.stop,
                denylist=self.denylist,
                cancel_ids=self.cancel_ids,
            )
            self.workers.append(worker)
            self._threads.append(
                threading.Thread(target=worker.serve, name=f"device-{paired.serial}", daemon=True)
            )
        self._threads.append(
            threading.Thread(target=self.uploader.run, args=(self.stop,), name="uploader", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def shutdown(self, drain_s: float = 5.0) -> dict[str, Any]:
        """Stop claiming, let runs in flight end (between steps), try to send what is queued.

        Returns the final `status()`.
        """
        self.stop.set()
        for thread in self._threads:
            thread.join()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and self.outbox.count():
            try:
                self.uploader.upload_all()
            except (ServerError, BridgeConfigError):
                break
        final = self.status()
        for worker in self.workers:
            worker.device.close()
        self.uploader.close()
        self.outbox.close()
        return final

    def status(self) -> dict[str, Any]:
        return {"runsDone": sum(w.runs_done for w in self.workers), "pendingReports": self.outbox.count()}
