"""Turning an engine run into `runs.report` run objects, queued in the outbox.

While a run moves, `ProgressReporter` queues its status and the trace so far — on every
status change, and for steps at most `interval_s` apart (a ticker flushes a step that
came in between), so the server hears of a moving run at least once a second. The final
report carries the whole result. A terminal status is only ever queued with the final
report: a terminal report without the end time and counts would be judged "unchanged"
by the server if it came first, and the counts would be lost.

With a server whose step gate takes the run's progress (`carry_on_gate`), the progress
after each step rides on the next step's gate instead (run_control.py): one request per
step. What a gate carries is remembered as the run in flight before it is sent (a restart
ends the run from it) and not queued; a step the gate did not carry (no answer, a long step, the
server refused it) is queued by the ticker within `interval_s`, as before.

`waiting_for_approval` is told to the server only once the approval exists there
(`approval_asked`, called by the approval gate when the server has it): a person who sees the run
waiting finds the approval to answer.

Each trace event is encoded to JSON once, as it comes: a snapshot is the claim's fields, the status
and the events' JSON joined, so a step costs the same at step 500 as at step 5.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device_bridge.outbox import Outbox
from interpreter.engine import RunResult
from interpreter.trace import RunStatus, TraceEvent, iso_utc

# The run fields runs.report accepts that the claim gives and the engine does not know.
_CLAIM_FIELDS = ("workflowId", "workflowVersionId", "deviceId", "trigger", "inputs")


def base_fields(claimed_run: dict[str, Any], device_id: str) -> dict[str, Any]:
    """The fields of a report that come from the claimed run (ids, trigger, inputs)."""
    base = {key: claimed_run[key] for key in _CLAIM_FIELDS if claimed_run.get(key) is not None}
    base["id"] = str(claimed_run["id"])
    base["deviceId"] = device_id
    base.setdefault("inputs", {})
    return base


def final_report(base: dict[str, Any], result: RunResult) -> dict[str, Any]:
    report = dict(base)
    report.update(result.to_json())
    report["id"] = base["id"]
    if report.get("inputs") is None:
        report["inputs"] = base.get("inputs", {})
    return report


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A run's progress as a report carries it: `body` is the runs.report run object, JSON."""

    steps: int
    status: str
    body: str


class ProgressReporter:
    """Feeds one run's progress into the outbox; give its methods to the engine as callbacks."""

    def __init__(self, outbox: Outbox, device_id: str, base: dict[str, Any], interval_s: float = 0.5) -> None:
        self.outbox = outbox
        self.device_id = device_id
        self.base = base
        self.interval_s = interval_s
        self.status = RunStatus.RUNNING
        self.trace: list[dict[str, Any]] = []
        # The trace's events as JSON (each encoded once) and the claim's fields as the object's start.
        self._encoded: list[str] = []
        self._head = json.dumps(base, separators=(",", ":"))[:-1]
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._dirty = False
        self._dirty_since = 0.0
        # Steps wait for the next step gate to carry them (set by ServerRunControl once the server
        # said its gate takes reports); the ticker still queues what no gate took in `interval_s`.
        self.carry_on_gate = False
        # The engine said it waits for approval; the status goes out once the server has the approval.
        self._approval_pending = False
        # Called on every tick, outside the lock (the run control announces a long leased step).
        self.on_tick: Callable[[], None] | None = None
        # The final report is queued held (the worker carries it on its next claim: outbox.py).
        self.hold_final = False
        # The outbox row of the final report, once queued (None before).
        self.final_seq: int | None = None
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name=f"progress-{base['id'][:8]}", daemon=True)
        self._ticker.start()

    def on_status(self, status: RunStatus) -> None:
        if status.terminal:
            return  # the final report carries it (see the module docstring)
        with self._lock:
            if status is RunStatus.WAITING_FOR_APPROVAL:
                self._approval_pending = True
                return
            self._approval_pending = False
            self.status = status
            self._flush()

    def approval_asked(self) -> None:
        """The server has the run's approval: from now on the run is waiting for it."""
        with self._lock:
            if not self._approval_pending:
                return  # answered or given up before the server heard of it
            self._approval_pending = False
            self.status = RunStatus.WAITING_FOR_APPROVAL
            self._flush()

    def on_event(self, event: TraceEvent) -> None:
        data = event.to_json()
        encoded = json.dumps(data, separators=(",", ":"))
        with self._lock:
            self.trace.append(data)
            self._encoded.append(encoded)
            if not self._dirty:
                self._dirty_since = time.monotonic()
            if not self.carry_on_gate and time.monotonic() - self._last_sent >= self.interval_s:
                self._flush()
            else:
                self._dirty = True

    def for_gate(self) -> Snapshot | None:
        """The run's progress for the next step gate to carry: a snapshot when steps came in since the
        server last heard of the run; None when it is up to date. It is remembered as the run in
        flight before it is sent, as a queued report is: a bridge killed while the gate is asked
        ends the run on restart with at least what the server may have stored."""
        with self._lock:
            if not self._dirty:
                return None
            snapshot = self._encode()
            self.outbox.remember_in_flight(self.base["id"], self.device_id, snapshot.body)
            return snapshot

    def carried(self, snapshot: Snapshot) -> None:
        """A step gate delivered `snapshot` (the server stored it, or had it): nothing to queue for it."""
        with self._lock:
            if len(self.trace) == snapshot.steps and self.status.value == snapshot.status:
                self._dirty = False
                self._last_sent = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        return {**self.base, "status": self.status.value, "trace": list(self.trace)}

    def _encode(self) -> Snapshot:
        """The run so far as JSON (the same object as `snapshot()`), from the events' own JSON."""
        status = self.status.value
        sep = "," if len(self._head) > 1 else ""
        body = f'{self._head}{sep}"status":"{status}","trace":[{",".join(self._encoded)}]}}'
        return Snapshot(len(self._encoded), status, body)

    def _flush(self) -> None:
        snapshot = self._encode()
        self.outbox.enqueue_json(
            self.base["id"], snapshot.status, snapshot.body, self.device_id, in_flight=True
        )
        self._last_sent = time.monotonic()
        self._dirty = False

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s / 2):
            with self._lock:
                if self._dirty and (
                    not self.carry_on_gate or time.monotonic() - self._dirty_since >= self.interval_s
                ):
                    self._flush()
            on_tick = self.on_tick
            if on_tick is not None:
                on_tick()

    def stop(self) -> None:
        """Stop the ticker without queuing anything more."""
        self._stop.set()
        if self._ticker is not threading.current_thread():
            self._ticker.join()

    def finish(self, result: RunResult) -> dict[str, Any]:
        """Stop the ticker and queue the final report; returns it."""
        self._stop.set()
        self._ticker.join()
        report = final_report(self.base, result)
        with self._lock:
            self.final_seq = self.outbox.enqueue(
                report, self.device_id, in_flight=False, hold=self.hold_final
            )
        return report

    def fail(self, message: str, started_at: datetime | None = None) -> dict[str, Any]:
        """Stop the ticker and queue a final `failed` report with the trace so far; returns it."""
        self._stop.set()
        if self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            report = ended_report(self.base, self.trace, message, started_at)
            self.final_seq = self.outbox.enqueue(
                report, self.device_id, in_flight=False, hold=self.hold_final
            )
        return report


def interrupted_report(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The final report of a run the bridge was stopped in the middle of (found on restart).

    It ends `failed` with the trace as far as it was reported: the steps after it cannot be
    known, and running the run again could repeat what the phone already did.
    """
    trace = list(snapshot.get("trace", []))
    now = datetime.now(UTC)
    report = dict(snapshot)
    report.update(
        status=RunStatus.FAILED.value,
        endedAt=iso_utc(now),
        errorMessage=(
            f"the bridge stopped while this run was in flight (after {len(trace)} step(s)); "
            "it was not finished: trigger it again if it should run"
        ),
        nSteps=len(trace),
        nFailed=sum(1 for event in trace if event.get("outcome") == "failed"),
        nRetries=sum(max(int(event.get("attempts", 1)) - 1, 0) for event in trace),
    )
    return report


def ended_report(
    base: dict[str, Any], trace: list[dict[str, Any]], message: str, started_at: datetime | None = None
) -> dict[str, Any]:
    """A final `failed` report made by the bridge itself (the engine could not end the run):
    the trace as far as it got, and `message` saying what happened and what to do."""
    now = datetime.now(UTC)
    started = started_at or now
    report = dict(base)
    report.update(
        status=RunStatus.FAILED.value,
        startedAt=iso_utc(started),
        endedAt=iso_utc(now),
        durationMs=max(int((now - started).total_seconds() * 1000), 0),
        trace=list(trace),
        errorMessage=message,
        nSteps=len(trace),
        nFailed=sum(1 for event in trace if event.get("outcome") == "failed"),
        nRetries=sum(max(int(event.get("attempts", 1)) - 1, 0) for event in trace),
    )
    return report
