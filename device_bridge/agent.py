"""The agent: serves paired devices for a server (`phoneflow bridge run`).

One worker thread per device claims the device's queued runs one at a time, runs each with
the engine on the phone's driver (`devices.open_device`:
uiautomator2 or Appium) under the server's package denylist and step gate
(`run_control.py`), and reports progress and the result through the outbox. One uploader
thread empties the outbox. A supervisor thread sends each device's heartbeat (with the
bridge's health), applies what the answers say (cancels, a new denylist version), and
restarts, with backoff, a worker or uploader thread that died.

Nothing a phone shows may stop a worker: an exception inside a run ends that run `failed`
with a message and the `bridge-error.json` artifact (`crash.py`), and the worker goes on.
When a step fails, the worker keeps a screenshot and the window hierarchy of that moment as
the run's artifacts (failure context); they are uploaded after the run's report.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from device_bridge.adb_tracker import GONE, AdbTracker, phone_health
from device_bridge.approvals import ServerApprovals
from device_bridge.commands import CommandWorker
from device_bridge.crash import crash_artifact, crash_message, hierarchy_artifact
from device_bridge.devices import BridgeDevice, open_device
from device_bridge.errors import (
    BridgeConfigError,
    BridgeError,
    DeviceBusyError,
    ServerError,
    ServerRefusedError,
)
from device_bridge.frames import FramePolicy, FrameRecorder, LiveStreamer
from device_bridge.outbox import Outbox, ReportResult, Settlement
from device_bridge.pairings import PairingWatcher
from device_bridge.reporting import ProgressReporter, base_fields, ended_report, interrupted_report
from device_bridge.run_control import LiveDenylist, ServerRunControl
from device_bridge.screen_recording import Recording, ScreenRecorder
from device_bridge.server_api import ClaimedRun, DeviceApi
from device_bridge.settings import BridgeSettings
from device_bridge.state import BridgeState, PairedDevice
from device_bridge.supervisor import Supervisor, ThreadSlot
from device_bridge.uploader import Backoff, Credentials, Uploader
from device_bridge.wakeup import Waker
from interpreter.control import RunControl, RunHalted, StepDecision
from interpreter.denylist import Denylist
from interpreter.device import Artifact
from interpreter.engine import RunResult, run_workflow
from interpreter.errors import DeviceError
from interpreter.trace import Outcome, RunStatus, TraceEvent, iso_utc

log = logging.getLogger(__name__)

DeviceOpener = Callable[[str], BridgeDevice]
# How often the supervisor looks at the threads (and whether a heartbeat is due).
SUPERVISE_TICK_S = 0.25
# How often a worker whose phone stopped answering looks for it again.
DEVICE_PROBE_INTERVAL_S = 2.0
# How often a worker whose phone adb lists as away looks whether it is back.
UNPLUGGED_TICK_S = 0.25
# How long a run that failed on a phone that does not answer waits for adb to say it was unplugged.
ADB_NEWS_WAIT_S = 1.5
# A claim refused for its body (as runs.report refuses a batch as a whole): nothing was claimed.
REFUSED_BODY = (400, 413, 422)


def unplugged_message(serial: str, state: str) -> str:
    """Why a phone cannot take runs: adb says it is away (`state`: `GONE`, `offline`, ...)."""
    where = "adb no longer lists it" if state == GONE else f"adb lists it as `{state}`"
    return (
        f"phone {serial} is disconnected ({where}): plug it back in (for a network phone: "
        f"`adb connect HOST:PORT`) and check that `adb devices` on the bridge's computer lists it as "
        "`device`; the bridge serves it again as soon as it does"
    )


def lost_run_message(serial: str, state: str, steps_done: int, detail: str | None) -> str:
    """The error of a run whose phone went away while it ran."""
    where = "adb no longer lists it" if state == GONE else f"adb lists it as `{state}`"
    text = (
        f"phone {serial} was disconnected during this run ({where}) after {steps_done} step(s); the run "
        "was stopped there. Plug the phone back in (check `adb devices` on the bridge's computer), "
        "then trigger the run again: the bridge serves the phone again as soon as adb lists it"
    )
    return f"{text} (what the step in flight met: {detail})" if detail else text


class PhonePresent:
    """The engine's `RunControl` for a served run: no step starts once adb says the phone is away."""

    def __init__(self, worker: DeviceWorker, then: RunControl) -> None:
        self.worker = worker
        self.then = then

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        away = self.worker.unplugged
        if away is not None:
            raise RunHalted(away)
        return self.then.before_step(node_id, seq)


def load_denylist(settings: BridgeSettings) -> Denylist:
    """The bridge's local additions to the server's denylist (`PHONEFLOW_BRIDGE_DENYLIST_FILE`)."""
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
        # Each part on its own: the device may be why the step failed (the report matters more).
        try:
            shot = self.device.screenshot()
            self._keep(Artifact(f"{stem}.png", shot.content_type, shot.data))
        except Exception as exc:
            log.warning("run %s: no screenshot for failed step %s: %s", self.run_id, event.seq, exc)
        try:
            self._keep(hierarchy_artifact(stem, self.device.hierarchy_xml()))
        except Exception as exc:
            log.warning("run %s: no hierarchy for failed step %s: %s", self.run_id, event.seq, exc)

    def _keep(self, artifact: Artifact) -> None:
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
        denylist: LiveDenylist | None = None,
        cancel_ids: set[str] | None = None,
        waker: Waker | None = None,
    ) -> None:
        self.paired = paired
        # Nudges the idle worker when a run is queued for its device (None: it polls claims).
        self.waker = waker
        self.device = device
        self.outbox = outbox
        self.settings = settings
        self.stop = stop
        # The server's effective list (it comes with every claimed run) plus the local file's.
        self.denylist = denylist if denylist is not None else LiveDenylist()
        self.client = client or httpx.Client(timeout=settings.http_timeout_s)
        self.api = DeviceApi(self.client, paired.server_url, paired.token)
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self.runs_done = 0
        # Runs the server asked to cancel (from heartbeats, gates and runs.report answers).
        self._cancel_ids: set[str] = cancel_ids if cancel_ids is not None else set()
        # Why the phone cannot take runs now (None when it can); the worker then waits for it.
        self.device_problem: str | None = None
        self._next_device_probe = 0.0
        # Held while a run runs: the screen inspector's clicks are refused meanwhile.
        self.run_lock = threading.Lock()
        self.run_in_hand: str | None = None  # the run being run now (told in the heartbeat)
        # Phones that come and go (adb's device tracking, `adb_changed`): the phone's adb state,
        # why it is away (None while adb lists it as `device`), and the state that made a run in
        # hand lose its phone. `opener` opens the phone again once it is back; `on_reopened` hands
        # the new connection to the phone's other threads.
        self.opener: DeviceOpener | None = None
        self.on_reopened: Callable[[BridgeDevice], None] | None = None
        self.adb_state: str | None = None
        self.seen_in_adb = False
        self.unplugged: str | None = None
        self._lost_state: str | None = None
        self._device_closed = False
        self._next_reopen = 0.0
        # What the phone said of itself at the last heartbeat (adb_tracker.phone_health).
        self.phone: dict[str, Any] = {}
        # Runs recorded by the phone's own screenrecord (when it has one).
        self.screen_recorder = ScreenRecorder()
        # The outbox row of the last run's final report, held for the next claim to carry (None: none).
        self._carry: int | None = None
        # That run's phone recording, stopped and queued once the claim carrying the report is answered
        # (pulling a video takes a while; the report must not wait for it).
        self._recording: tuple[Recording, str] | None = None

    def adb_changed(self, state: str) -> None:
        """adb's device list says the phone is now `state` (called on the tracker's thread)."""
        self.adb_state = state
        if state == "device":
            self.seen_in_adb = True
            return  # the worker opens it again (`_reopen`) if it was away
        if not self.seen_in_adb:
            return  # never listed by this machine's adb (a device cloud's phone): not ours to judge
        if self.unplugged is None:
            log.error("device %s: %s", self.paired.serial, unplugged_message(self.paired.serial, state))
        self.unplugged = unplugged_message(self.paired.serial, state)
        if self.run_in_hand is not None and self._lost_state is None:
            self._lost_state = state

    def _reopen(self) -> bool:
        """The phone is listed again: connect to it afresh (its uiautomator2 server or Appium session
        went with it). False when it cannot be opened yet (tried again a moment later)."""
        now = time.monotonic()
        if now < self._next_reopen:
            return False
        self._next_reopen = now + DEVICE_PROBE_INTERVAL_S
        if self.opener is None:
            self.unplugged = None
            return True
        if not self._device_closed:
            try:
                self.device.close()
            except Exception as exc:  # the old connection went with the phone
                log.debug("device %s: closing the old connection: %s", self.paired.serial, exc)
            self._device_closed = True
        try:
            device = self.opener(self.paired.serial)
        except BridgeError as exc:
            log.warning(
                "device %s is listed by adb again but cannot be opened yet: %s", self.paired.serial, exc
            )
            return False
        self.device = device
        self._device_closed = False
        if self.on_reopened is not None:
            self.on_reopened(device)
        self.unplugged = None
        self.device_problem = None
        log.warning("device %s is back: serving it again", self.paired.serial)
        return True

    def serve(self) -> None:
        try:
            self._serve()
        finally:
            self._let_go()  # stopping: the uploader sends the last run's report

    def _serve(self) -> None:
        while not self.stop.is_set():
            if self.unplugged is not None:
                self._let_go()  # no claim soon: the report goes up without waiting for one
                if not (self.adb_state == "device" and self._reopen()):
                    self.stop.wait(UNPLUGGED_TICK_S)
                continue
            if self.device_problem is not None and not self._device_back():
                self._let_go()
                self.stop.wait(self.settings.claim_interval_s)
                continue
            try:
                try:
                    claimed = self._claim()
                finally:
                    self._finish_recording()  # the last run's video, once its report went up
            except ServerError as exc:
                delay = self.backoff.next_delay()
                if isinstance(exc, ServerRefusedError) and exc.status_code in (401, 403):
                    delay = max(delay, self.settings.backoff_max_s)
                log.warning("device %s: %s; next try in %.1f s", self.paired.serial, exc, delay)
                self.stop.wait(delay)
                continue
            self.backoff.reset()
            if claimed is None:
                if self.waker is not None:
                    self.waker.wait_for_work(self.settings.claim_interval_s)
                else:
                    self.stop.wait(self.settings.claim_interval_s)
                continue
            with self.run_lock:
                self.run_in_hand = claimed.run_id
                self._lost_state = self.adb_state if self.unplugged is not None else None
                try:
                    self.execute(claimed, carry=self.api.accepts_report)
                finally:
                    self.run_in_hand = None
                    self._lost_state = None

    def _claim(self) -> ClaimedRun | None:
        """Claim the next run, carrying the last run's held final report when there is one (the server
        stores it in the claim's transaction: one request instead of a runs.report and a claim). The
        answer for it settles its outbox row as the uploader's would; when the claim fails, the row goes
        to the uploader (a 400, 413 or 422: the body was refused, the report too large or invalid, or the
        server takes no report; nothing was claimed, and the claim is asked again at once without it)."""
        seq, self._carry = self._carry, None
        row = self.outbox.held_report(seq) if seq is not None else None
        if row is None:
            if seq is not None:
                self.outbox.release(seq)
            return self.api.claim()
        try:
            claimed, answer = self.api.claim_carrying(row.body)
        except ServerRefusedError as exc:
            self.outbox.release(row.seq)
            if exc.status_code not in REFUSED_BODY:
                raise
            log.warning(
                "device %s: the claim did not take run %s's report (%s): it goes by runs.report",
                self.paired.serial,
                row.run_id,
                exc,
            )
            return self.api.claim()
        except BaseException:
            self.outbox.release(row.seq)
            raise
        result = answer.get("result") if answer is not None else None
        if answer is None or result not in ("stored", "unchanged", "rejected"):
            self.outbox.release(row.seq)
            return claimed
        reason = answer.get("reason")
        self.outbox.settle([Settlement(row.seq, ReportResult(str(result)), str(reason) if reason else None)])
        return claimed

    def _carry_final(self, reporter: ProgressReporter) -> None:
        """The run's final report (queued held) waits for the next claim."""
        if reporter.hold_final and reporter.final_seq is not None:
            self._let_go()
            self._carry = reporter.final_seq

    def _let_go(self) -> None:
        """The held final report (if any) goes to the uploader: no claim carries it soon; the last run's
        recording, if still to be queued, is queued after it."""
        seq, self._carry = self._carry, None
        if seq is not None:
            self.outbox.release(seq)
        self._finish_recording()

    def _finish_recording(self) -> None:
        """Stop the last run's phone recording and queue it (after its report: never before)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording[0].finish(self.outbox, recording[1])

    def _device_back(self) -> bool:
        """Whether the phone answers again (asked at most every few seconds while it does not)."""
        now = time.monotonic()
        if now < self._next_device_probe:
            return False
        self._next_device_probe = now + DEVICE_PROBE_INTERVAL_S
        try:
            self.device.ping()
        except DeviceError as exc:
            self.device_problem = str(exc)
            return False
        log.warning("device %s answers again: claiming its runs", self.paired.serial)
        self.device_problem = None
        return True

    def _check_device_after(self, result: RunResult | None) -> None:
        """After a run that did not succeed, see whether the phone is still there."""
        if result is not None and result.status.value == "success":
            return
        try:
            self.device.ping()
        except DeviceError as exc:
            self.device_problem = str(exc)
            self._next_device_probe = time.monotonic() + DEVICE_PROBE_INTERVAL_S
            log.error(
                "device %s does not answer (%s): no run is claimed for it until it does",
                self.paired.serial,
                exc,
            )

    def execute(self, claimed: ClaimedRun, *, carry: bool = False) -> RunResult | None:
        """Run one claimed run to its end and queue its reports (and failure context). `carry`: the
        final report is queued held, for the next claim to carry (`_claim`; the server takes one).

        Returns None when the run could not be run as the engine runs it (no denylist from the
        server, or an exception inside the run): it was then reported `failed` with what to do.
        """
        device_id = self.paired.device_id
        base = base_fields(claimed.run, device_id)
        if claimed.denylist is None:
            message = (
                "not started: the server sent no package denylist with this run, so the bridge cannot "
                "know which apps it must refuse; update the server (it must send the denylist with "
                "every claimed run) and trigger the run again"
            )
            self.outbox.enqueue(ended_report(base, [], message), device_id, in_flight=False)
            log.error("device %s: run %s %s", self.paired.serial, claimed.run_id, message)
            return None
        self.denylist.apply(claimed.denylist)
        reporter = ProgressReporter(self.outbox, device_id, base, self.settings.progress_interval_s)
        reporter.hold_final = carry
        context = FailureContext(
            self.device, self.outbox, claimed.run_id, device_id, self.settings.max_artifact_bytes
        )

        # The run's setting (sent with the claim, else its workflow's), never above the bridge's own.
        requested = claimed.frames if claimed.frames is not None else claimed.definition.get("frames")
        policy = FramePolicy.from_settings(self.settings).for_run(requested)
        frames = FrameRecorder(self.device, self.outbox, claimed.run_id, device_id, policy)

        def should_cancel() -> bool:
            return claimed.run_id in self._cancel_ids or self.stop.is_set()

        # Approval nodes wait for people, who answer through the server (dashboard or API).
        approvals = ServerApprovals(
            self.api,
            should_cancel=should_cancel,
            poll_interval_s=self.settings.approval_poll_interval_s,
            backoff=Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
            on_asked=reporter.approval_asked,
        )
        control = ServerRunControl(
            self.api,
            claimed.run_id,
            self.denylist,
            cancelled=should_cancel,
            timeout_s=self.settings.gate_timeout_s,
            backoff=Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
            progress=reporter,
            lease=claimed.lease,
        )
        device = self.device  # this run's connection, even if the phone is opened again meanwhile
        log.info("device %s: running %s", self.paired.serial, claimed.run_id)
        started_at = datetime.now(UTC)
        recording = self.screen_recorder.start(
            device, claimed.run_id, self.paired.serial, frames.policy.mode, self.settings
        )
        try:
            return self._run(claimed, device, reporter, context, frames, control, approvals, started_at)
        finally:
            self._carry_final(reporter)
            if recording is not None:  # after the run's report is queued: it never waits for this
                if self._carry is not None:
                    self._recording = (recording, device_id)  # after the claim that carries the report
                else:
                    recording.finish(self.outbox, device_id)

    def _run(
        self,
        claimed: ClaimedRun,
        device: BridgeDevice,
        reporter: ProgressReporter,
        context: FailureContext,
        frames: FrameRecorder,
        control: ServerRunControl,
        approvals: ServerApprovals,
        started_at: datetime,
    ) -> RunResult | None:
        device_id = self.paired.device_id

        def on_event(event: TraceEvent) -> None:
            reporter.on_event(event)
            context.on_event(event)

        streamer = LiveStreamer(
            self.device,
            lambda jpeg: self.api.live_frame(claimed.run_id, jpeg, self.settings.gate_timeout_s),
            lambda: control.live,
            frames.policy,
        )
        try:
            with streamer, frames:  # leaving: the last step's frame is taken and queued
                result = run_workflow(
                    claimed.definition,
                    device,
                    inputs=claimed.run.get("inputs") or {},
                    run_id=claimed.run_id,
                    denylist=self.denylist,
                    on_event=on_event,
                    on_status=reporter.on_status,
                    control=PhonePresent(self, control),
                    approvals=approvals,
                    observer=frames,
                )
        except Exception as exc:  # nothing inside a run may stop the worker: the run ends failed
            self._await_adb_news(device)
            self._crashed(claimed, reporter, exc, started_at)
            self._check_device_after(None)
            return None
        if result.status is RunStatus.FAILED:
            self._await_adb_news(device)
        result = self._phone_lost(result)
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
        self._check_device_after(result)
        return result

    def _await_adb_news(self, device: BridgeDevice) -> None:
        """A run failed: if its phone does not answer either, give adb's device list a moment to say
        whether it was unplugged (the step in flight may fail a few ms before adb tells), so that the
        run's message says so rather than the driver's words."""
        if self._lost_state is not None or not self.seen_in_adb:
            return
        try:
            device.ping()
        except Exception:  # the phone does not answer: unplugged, or a driver problem
            deadline = time.monotonic() + ADB_NEWS_WAIT_S
            while self._lost_state is None and time.monotonic() < deadline:
                time.sleep(0.05)

    def _phone_lost(self, result: RunResult) -> RunResult:
        """A run that did not succeed while its phone went away ends `failed`, saying so."""
        state = self._lost_state
        if state is None or result.status in (RunStatus.SUCCESS, RunStatus.CANCELLED):
            return result
        detail = result.error_message if result.error_message != self.unplugged else None
        message = lost_run_message(self.paired.serial, state, len(result.trace), detail)
        log.error("device %s: run %s: %s", self.paired.serial, result.run_id, message)
        return dataclasses.replace(result, status=RunStatus.FAILED, error_message=message)

    def _crashed(
        self, claimed: ClaimedRun, reporter: ProgressReporter, exc: Exception, started_at: datetime
    ) -> None:
        steps_done = len(reporter.trace)
        if self._lost_state is not None:
            detail = crash_message(exc, steps_done)
            message = lost_run_message(self.paired.serial, self._lost_state, steps_done, detail)
            reporter.fail(message, started_at)
            self.runs_done += 1
            return
        log.exception(
            "device %s: run %s broke after %d step(s)", self.paired.serial, claimed.run_id, steps_done
        )
        try:
            dump: Any = self.device.hierarchy_xml()
        except Exception as dump_error:  # the phone may be what broke
            dump = f"no window hierarchy could be read: {type(dump_error).__name__}: {dump_error}"
        artifact = crash_artifact(
            exc, run_id=claimed.run_id, serial=self.paired.serial, dump=dump, steps_done=steps_done
        )
        reporter.fail(crash_message(exc, steps_done), started_at)
        if len(artifact.data) <= self.settings.max_artifact_bytes:
            self.outbox.add_artifact(claimed.run_id, self.paired.device_id, artifact)
        self.runs_done += 1


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
        self.supervisor = Supervisor(self.stop, settings.backoff_base_s, settings.backoff_max_s)
        # The screen inspector's command threads: apart, because a long poll may hold one for
        # `command_wait_s`, and shutting down does not wait for that (daemon threads).
        self.commands = Supervisor(self.stop, settings.backoff_base_s, settings.backoff_max_s)
        self._slots: dict[str, ThreadSlot] = {}
        self._uploader_slot: ThreadSlot | None = None
        # Started without serials: every paired phone, those paired later included.
        self.pairings = None if serials else PairingWatcher(self.state, settings.server_url)
        self._supervisor_thread: threading.Thread | None = None
        # adb's device list, followed on a thread of its own: phones unplugged and plugged back.
        self.tracker = AdbTracker(self.stop) if settings.track_devices else None
        if self.tracker is not None:
            self.tracker.listen(self._adb_changed)
        # When each device's next heartbeat is due (a change of its phone makes it due at once).
        self._heartbeat_due: dict[str, float] = {}
        self._commands_of: dict[str, CommandWorker] = {}

    def _adb_changed(self, serial: str, state: str) -> None:
        for worker in list(self.workers):
            if worker.paired.serial == serial:
                worker.adb_changed(state)
                self._heartbeat_due[worker.paired.device_id] = 0.0
                if state == "device" and worker.waker is not None:
                    worker.waker.interrupt()  # back: claim what was queued meanwhile at once

    def _on_answer(self, run_id: str, answer: dict[str, Any]) -> None:
        if answer.get("cancelRequested"):
            self.cancel_ids.add(run_id)

    def _credentials(self, device_id: str) -> Credentials | None:
        paired = self.state.by_device_id(device_id)
        return Credentials(paired.server_url, paired.token) if paired else None

    def end_interrupted_runs(self, device_ids: set[str] | None = None) -> int:
        """Report as failed the runs a previous bridge left in flight here (killed, crashed), of the
        devices served (or of `device_ids`)."""
        serving = device_ids if device_ids is not None else {p.device_id for p in self.paired}
        ended = 0
        for device_id, snapshot in self.outbox.runs_in_flight():
            if device_id in serving:
                self.outbox.enqueue(interrupted_report(snapshot), device_id, in_flight=False)
                log.warning("run %s was left in flight by a stopped bridge: reported failed", snapshot["id"])
                ended += 1
        return ended

    def start(self) -> None:
        """Open every device (refused when another bridge holds one), end runs a dead bridge
        left in flight, and start the threads (workers, uploader, and their supervisor)."""
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
            self._add_worker(paired, device)
        self._uploader_slot = self.supervisor.add("uploader", lambda: self.uploader.run(self.stop))
        if self.tracker is not None:
            self.supervisor.add("adb-tracker", self.tracker.serve)
        self.supervisor.start_all()
        self.commands.start_all()
        self._supervisor_thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor_thread.start()

    def _add_worker(self, paired: PairedDevice, device: BridgeDevice) -> list[ThreadSlot]:
        """A worker, a command thread and a wake-up thread for one opened phone (their slots, not
        started)."""
        worker = DeviceWorker(
            paired,
            device,
            self.outbox,
            self.settings,
            self.stop,
            denylist=LiveDenylist(self.denylist),
            cancel_ids=self.cancel_ids,
            waker=self._waker(paired),
        )
        worker.opener = self.opener
        if self.tracker is not None:
            state = self.tracker.state(paired.serial)
            if state is not None:
                worker.adb_changed(state)
        self.workers.append(worker)
        slot = self.supervisor.add(f"device-{paired.serial}", worker.serve)
        self._slots[paired.device_id] = slot
        commands = CommandWorker(
            DeviceApi(httpx.Client(), paired.server_url, paired.token),
            device,
            self.stop,
            run_lock=worker.run_lock,
            wait_s=self.settings.command_wait_s,
            settle_s=self.settings.click_settle_s,
            backoff=Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
            serial=paired.serial,
        )
        self._commands_of[paired.device_id] = commands

        def reopened(device: BridgeDevice) -> None:
            commands.device = device

        worker.on_reopened = reopened
        slots = [slot, self.commands.add(f"commands-{paired.serial}", commands.serve)]
        if worker.waker is not None:
            slots.append(self.commands.add(f"wakeup-{paired.serial}", worker.waker.serve))
        return slots

    def _pick_up_pairings(self) -> None:
        """Serve the phones paired since the bridge started (when it serves every paired phone)."""
        if self.pairings is None:
            return
        for paired in self.pairings.new_pairings(self._slots):
            try:
                device = self.opener(paired.serial)
            except BridgeError as exc:
                self.pairings.failed(paired, str(exc))
                continue
            self.paired.append(paired)
            self.end_interrupted_runs({paired.device_id})
            for slot in self._add_worker(paired, device):
                slot.start()
            log.info("device %s: paired while the bridge runs, now served", paired.serial)

    def _waker(self, paired: PairedDevice) -> Waker | None:
        if self.settings.wakeup_wait_s <= 0:
            return None
        return Waker(
            DeviceApi(httpx.Client(), paired.server_url, paired.token),
            self.stop,
            wait_s=self.settings.wakeup_wait_s,
            backoff=Backoff(self.settings.backoff_base_s, self.settings.backoff_max_s),
            serial=paired.serial,
        )

    def _supervise(self) -> None:
        """Restart dead threads; send each device's heartbeat when it is due and apply its answer."""
        client = httpx.Client(timeout=self.settings.http_timeout_s)
        apis: dict[str, DeviceApi] = {}
        due = self._heartbeat_due
        try:
            while True:
                try:
                    self._pick_up_pairings()
                    self.supervisor.check()
                    self.commands.check()
                    for worker in list(self.workers):
                        if self.stop.is_set():
                            break  # stopping: no more heartbeats (nor health probes) to send
                        paired = worker.paired
                        if paired.device_id not in apis:
                            apis[paired.device_id] = DeviceApi(client, paired.server_url, paired.token)
                        if time.monotonic() >= due.get(paired.device_id, 0.0):
                            due[paired.device_id] = time.monotonic() + self.settings.heartbeat_interval_s
                            self._heartbeat(worker, apis[paired.device_id])
                except Exception:  # the supervisor must outlive whatever it meets
                    log.exception("the bridge's supervisor met an error; it goes on")
                if self.stop.wait(SUPERVISE_TICK_S):
                    return
        finally:
            client.close()

    def health(self, worker: DeviceWorker) -> dict[str, Any]:
        """What the heartbeat tells the server about the bridge's side of one device."""
        slot = self._slots[worker.paired.device_id]
        uploader = self._uploader_slot.health() if self._uploader_slot else {"restarts": 0}
        state = "serving"
        if not slot.alive:
            state = "restarting"
        elif worker.unplugged is not None or worker.device_problem is not None:
            state = "waiting for the device"
        return {
            "worker": state,
            "workerRestarts": slot.restarts,
            "lastWorkerError": slot.health()["lastError"],
            "lastWorkerErrorAt": slot.health()["lastErrorAt"],
            "deviceProblem": worker.unplugged or worker.device_problem,
            "runInHand": worker.run_in_hand,
            "uploaderRestarts": uploader["restarts"],
        }

    def phone_health(self, worker: DeviceWorker) -> dict[str, Any]:
        """What the heartbeat tells the server about the phone itself: its adb state and, while adb
        lists it, battery, charging, screen and the app in front (one shell round trip); the run in hand.

        A phone this machine's adb has never listed (an Appium device cloud's) is `unknown`, not
        `gone`: nothing here can tell whether it is there, and its health is not asked over adb."""
        state = worker.adb_state if worker.adb_state is not None else "unknown"
        local = worker.seen_in_adb or worker.adb_state is None  # None: adb's list is not followed
        if not worker.seen_in_adb and state == GONE:
            state = "unknown"
        ready = worker.unplugged is None and not worker._device_closed
        if ready and local and state in ("device", "unknown"):
            probed = phone_health(worker.paired.serial)
            if "probeError" not in probed or not worker.phone:
                worker.phone = probed
        elif worker.unplugged is not None:
            worker.phone = {}
        return {
            "adbState": state,
            "battery": worker.phone.get("battery"),
            "charging": worker.phone.get("charging"),
            "screenOn": worker.phone.get("screenOn"),
            "foregroundApp": worker.phone.get("foregroundApp"),
            "runInHand": worker.run_in_hand,
            "checkedAt": iso_utc(datetime.now(UTC)),
        }

    def _heartbeat(self, worker: DeviceWorker, api: DeviceApi) -> None:
        try:
            answer = api.heartbeat({"bridge": self.health(worker), "phone": self.phone_health(worker)})
        except ServerError as exc:
            log.warning("device %s: heartbeat: %s", worker.paired.serial, exc)
            return
        for run_id in answer.get("cancelRunIds", []) or []:
            self.cancel_ids.add(str(run_id))
        version = answer.get("denylistVersion")
        if isinstance(version, str) and version != worker.denylist.version:
            try:
                worker.denylist.apply(api.config())
            except ServerError as exc:
                log.warning(
                    "device %s: the denylist changed but could not be fetched: %s", worker.paired.serial, exc
                )

    def shutdown(self, drain_s: float = 5.0) -> dict[str, Any]:
        """Stop claiming, let runs in flight end (between steps), try to send what is queued.

        Returns the final `status()`.
        """
        self.stop.set()
        for worker in self.workers:
            if worker.waker is not None:
                worker.waker.interrupt()
        if self._supervisor_thread is not None:
            self._supervisor_thread.join()
        self.supervisor.join()
        self.commands.join(timeout=1.0)
        deadline = time.monotonic() + drain_s
        # Artifacts too: a run's recording is queued after its report, as the run ends.
        while time.monotonic() < deadline and (self.outbox.count() or self.outbox.next_artifact()):
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
