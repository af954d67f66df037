"""The bridge under a lease: after a gate that granted one, steps start without asking until it runs
out; their progress still reaches the outbox; a leased step that runs long is announced as the step in
flight (and hears a cancel). Against a real server process (lease 1 s, the default)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from device_bridge.outbox import Outbox
from device_bridge.reporting import ProgressReporter, base_fields
from device_bridge.run_control import ANNOUNCE_AFTER_S, LiveDenylist, ServerRunControl
from device_bridge.server_api import DeviceApi
from interpreter.control import StepDecision
from interpreter.trace import Outcome, TraceEvent
from server.runs.events import RUN_STEP
from server.runs.models import RunEvent
from tests.bridge.server_process import ServerProcess, publish_workflow, trigger

STEPS = 6
WAITS = {
    "schemaVersion": 1,
    "name": "Waits",
    "start": "w1",
    "nodes": [
        {
            "id": f"w{i}",
            "kind": "action.wait",
            "params": {"ms": 10},
            **({"next": f"w{i + 1}"} if i < STEPS else {}),
        }
        for i in range(1, STEPS + 1)
    ],
}


def _event(seq: int) -> TraceEvent:
    return TraceEvent(seq, f"w{seq}", "action.wait", Outcome.OK, None, datetime.now(UTC), 10, 1)


def _run(server: ServerProcess, api: DeviceApi, device_id: str) -> dict[str, Any]:
    with server.client() as client:
        run_id = trigger(client, publish_workflow(client, WAITS), device_id)
    claimed = api.claim()
    assert claimed is not None
    assert claimed.run_id == run_id
    return claimed.run


@contextmanager
def _served(
    api: DeviceApi,
    run: dict[str, Any],
    device_id: str,
    tmp_path: Path,
    interval_s: float,
    lease: tuple[float, int] | None = None,
) -> Iterator[tuple[ServerRunControl, ProgressReporter, Outbox]]:
    """The run's control, reporter and outbox as the bridge's worker makes them; stopped afterwards."""
    outbox = Outbox(tmp_path / "outbox.db")
    reporter = ProgressReporter(outbox, device_id, base_fields(run, device_id), interval_s=interval_s)
    control = ServerRunControl(
        api,
        str(run["id"]),
        LiveDenylist(),
        cancelled=lambda: False,
        timeout_s=5,
        progress=reporter,
        lease=lease,
    )
    try:
        yield control, reporter, outbox
    finally:
        reporter.stop()
        outbox.close()


def _wait_for_queued_progress(outbox: Outbox) -> None:
    deadline = time.monotonic() + 5
    while not any(len(r.run()["trace"]) == STEPS for r in outbox.reports()):
        assert time.monotonic() < deadline, "the leased steps' progress was not queued"
        time.sleep(0.05)


def _announced_steps(server: ServerProcess, run_id: str) -> list[int]:
    with server.db.session_factory() as session:
        payloads = session.scalars(
            select(RunEvent.payload).where(RunEvent.run_id == run_id, RunEvent.event == RUN_STEP)
        ).all()
    return [int(payload["seq"]) for payload in payloads]


def test_steps_under_a_lease_start_without_asking_and_their_progress_is_queued(
    server: ServerProcess, tmp_path: Path
) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = DeviceApi(http, server.url, device.token)
        api.grants_lease = True  # as after this worker's first gate on this server
        run = _run(server, api, device.id)
        with _served(api, run, device.id, tmp_path, 0.3) as (control, reporter, outbox):
            for seq in range(1, STEPS + 1):
                assert control.before_step(f"w{seq}", seq) is StepDecision.GO
                reporter.on_event(_event(seq))
            assert (control.asked, control.leased) == (1, STEPS - 1)  # one gate, then the lease
            _wait_for_queued_progress(outbox)
            time.sleep(1.0)  # the lease (1 s, a tenth kept back) has run out: the next step asks
            assert control.before_step("w7", STEPS + 1) is StepDecision.GO
            assert control.asked == 2


def test_a_run_claimed_with_a_lease_starts_its_first_steps_without_asking(
    server: ServerProcess, tmp_path: Path
) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = DeviceApi(http, server.url, device.token)
        with server.client() as client:
            trigger(client, publish_workflow(client, WAITS), device.id)
        claimed = api.claim()
        assert claimed is not None
        assert claimed.lease is not None
        assert claimed.lease[1] == 1000
        assert api.grants_lease is True
        with _served(api, claimed.run, device.id, tmp_path, 0.3, claimed.lease) as (
            control,
            reporter,
            outbox,
        ):
            for seq in range(1, STEPS + 1):
                assert control.before_step(f"w{seq}", seq) is StepDecision.GO
                reporter.on_event(_event(seq))
            assert (control.asked, control.leased) == (0, STEPS)
            assert outbox.reports() == []  # held for the ticker: not one report a step
            _wait_for_queued_progress(outbox)


def test_a_long_leased_step_is_announced_and_hears_a_cancel(server: ServerProcess, tmp_path: Path) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http, server.client() as client:
        api = DeviceApi(http, server.url, device.token)
        api.grants_lease = True
        run = _run(server, api, device.id)
        with _served(api, run, device.id, tmp_path, 0.2) as (control, reporter, _):
            assert control.before_step("w1", 1) is StepDecision.GO
            reporter.on_event(_event(1))
            assert control.before_step("w2", 2) is StepDecision.GO  # leased: not announced yet
            assert _announced_steps(server, run["id"]) == [1]
            time.sleep(ANNOUNCE_AFTER_S + 0.3)  # step 2 runs long: the ticker announces it
            assert _announced_steps(server, run["id"]) == [1, 2]
            reporter.on_event(_event(2))

            assert control.before_step("w3", 3) is StepDecision.GO  # the announcement renewed the lease
            assert control.asked == 1
            started = time.monotonic()
            # step 3 runs long too: its announcement (the ticker's thread) hears the cancel, and the
            # server, knowing the bridge heard it, answers the cancel before the lease would have run out
            assert client.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 200
            assert time.monotonic() - started < 0.9
            assert control.before_step("w4", 4) is StepDecision.CANCEL
            assert _announced_steps(server, run["id"]) == [1, 2]  # a cancelled run's step is not in flight


class SlowToHearApi(DeviceApi):
    """A bridge slow to act on an announcement's answer: it comes back a while after the server answered."""

    def gate(
        self, run_id: str, timeout_s: float, step: dict[str, Any] | None = None, report: str | None = None
    ) -> dict[str, Any]:
        answer = super().gate(run_id, timeout_s, step, report)
        if threading.current_thread().name.startswith("progress-"):  # the reporter's ticker
            time.sleep(0.6)
        return answer


def test_no_step_starts_under_the_lease_while_an_announcement_that_heard_a_cancel_is_on_its_way(
    server: ServerProcess, tmp_path: Path
) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http, server.client() as client:
        api = SlowToHearApi(http, server.url, device.token)
        with server.client() as account:
            trigger(account, publish_workflow(account, WAITS), device.id)
        claimed = api.claim()
        assert claimed is not None
        assert claimed.lease is not None
        with _served(api, claimed.run, device.id, tmp_path, 0.2, claimed.lease) as (control, _, _):
            assert control.before_step("w1", 1) is StepDecision.GO  # leased, and it runs long
            # answered once the announcement (the ticker's thread) told the bridge
            assert client.post(f"/api/v1/runs/{claimed.run_id}/cancel").status_code == 200
            # The announcement's answer has not been acted on yet: the lease must not start step 2.
            assert control.before_step("w2", 2) is StepDecision.CANCEL
