"""A run's progress rides on the step gate (one request per step) when the server's gate takes it; with
an older server, or when the gate does not answer, the reporter queues it in the outbox as before.
Against a real server process; the engine's callbacks are called as a run calls them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_bridge.errors import ServerRefusedError, ServerUnreachableError
from device_bridge.outbox import Outbox
from device_bridge.reporting import ProgressReporter, base_fields
from device_bridge.run_control import LiveDenylist, ServerRunControl
from device_bridge.server_api import DeviceApi
from interpreter.control import StepDecision
from interpreter.trace import Outcome, TraceEvent
from tests.bridge.server_process import ServerProcess, free_port, publish_workflow, trigger

WAITS = {
    "schemaVersion": 1,
    "name": "Two waits",
    "start": "w1",
    "nodes": [
        {"id": "w1", "kind": "action.wait", "params": {"ms": 10}, "next": "w2"},
        {"id": "w2", "kind": "action.wait", "params": {"ms": 10}},
    ],
}


class OlderServerApi(DeviceApi):
    """A server from before the gate took reports: its answer has no `acceptsReport`."""

    def gate(
        self, run_id: str, timeout_s: float, step: dict[str, Any] | None = None, report: str | None = None
    ) -> dict[str, Any]:
        assert report is None, "a report was sent to a gate that never offered to take it"
        answer = super().gate(run_id, timeout_s, step, report)
        answer.pop("acceptsReport", None)
        return answer


def _event(seq: int) -> TraceEvent:
    return TraceEvent(seq, f"w{seq}", "action.wait", Outcome.OK, None, datetime.now(UTC), 10, 1)


def _claimed_run(server: ServerProcess, api: DeviceApi, device_id: str) -> dict[str, Any]:
    with server.client() as client:
        workflow_id = publish_workflow(client, WAITS)
        run_id = trigger(client, workflow_id, device_id)
    claimed = api.claim()
    assert claimed is not None
    assert claimed.run_id == run_id
    return claimed.run


def _server_trace_len(server: ServerProcess, run_id: str) -> int:
    with server.client() as client:
        return len(client.get(f"/api/v1/runs/{run_id}").json()["trace"])


def test_the_gate_carries_each_steps_progress_and_the_outbox_stays_empty(
    server: ServerProcess, tmp_path: Path
) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = DeviceApi(http, server.url, device.token)
        run = _claimed_run(server, api, device.id)
        api.grants_lease = False  # no lease: a gate before every step (leases: test_run_lease.py)
        outbox = Outbox(tmp_path / "outbox.db")
        reporter = ProgressReporter(outbox, device.id, base_fields(run, device.id), interval_s=0.5)
        control = ServerRunControl(
            api, run["id"], LiveDenylist(), cancelled=lambda: False, timeout_s=5, progress=reporter
        )
        try:
            assert control.before_step("w1", 1) is StepDecision.GO
            assert reporter.carry_on_gate is True  # the server said its gate takes reports
            reporter.on_event(_event(1))
            assert control.before_step("w2", 2) is StepDecision.GO
            assert control.carried == 1
            assert _server_trace_len(server, run["id"]) == 1
            time.sleep(1.0)  # the ticker had two chances: it queued nothing the gate had carried
            assert outbox.reports() == []
            # a restart would end the run from the carried snapshot
            [(_, snapshot)] = outbox.runs_in_flight()
            assert [event["seq"] for event in snapshot["trace"]] == [1]
        finally:
            reporter.stop()
            outbox.close()


def test_an_older_servers_gate_gets_no_report_and_the_outbox_sends_progress(
    server: ServerProcess, tmp_path: Path
) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = OlderServerApi(http, server.url, device.token)
        run = _claimed_run(server, api, device.id)
        outbox = Outbox(tmp_path / "outbox.db")
        reporter = ProgressReporter(outbox, device.id, base_fields(run, device.id), interval_s=0.5)
        control = ServerRunControl(
            api, run["id"], LiveDenylist(), cancelled=lambda: False, timeout_s=5, progress=reporter
        )
        try:
            assert control.before_step("w1", 1) is StepDecision.GO
            assert reporter.carry_on_gate is False
            reporter.on_event(_event(1))
            assert control.before_step("w2", 2) is StepDecision.GO
            assert control.carried == 0
            deadline = time.monotonic() + 5
            while (
                not any(len(r.run()["trace"]) == 1 for r in outbox.reports()) and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert any(len(r.run()["trace"]) == 1 for r in outbox.reports()), (
                "the step's progress was not queued"
            )
        finally:
            reporter.stop()
            outbox.close()


def test_a_step_no_gate_carried_is_queued_within_the_interval(server: ServerProcess, tmp_path: Path) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = DeviceApi(http, server.url, device.token)
        run = _claimed_run(server, api, device.id)
        outbox = Outbox(tmp_path / "outbox.db")
        reporter = ProgressReporter(outbox, device.id, base_fields(run, device.id), interval_s=0.3)
        control = ServerRunControl(
            api, run["id"], LiveDenylist(), cancelled=lambda: False, timeout_s=5, progress=reporter
        )
        try:
            control.before_step("w1", 1)
            assert reporter.carry_on_gate is True
            reporter.on_event(_event(1))  # a long step: no gate comes for a while
            deadline = time.monotonic() + 5
            while not outbox.reports() and time.monotonic() < deadline:
                time.sleep(0.05)
            [queued] = outbox.reports()
            assert [event["seq"] for event in queued.run()["trace"]] == [1]
        finally:
            reporter.stop()
            outbox.close()


def test_the_gates_refusals_and_silence_are_the_errors_the_bridge_acts_on(server: ServerProcess) -> None:
    device = server.device()
    with httpx.Client(timeout=10) as http:
        api = DeviceApi(http, server.url, device.token)
        unknown = "00000000-0000-4000-8000-000000000000"
        with pytest.raises(ServerRefusedError, match="this device has no run") as refused:
            api.gate(unknown, 5, {"seq": 1, "nodeId": "w1"})
        assert refused.value.status_code == 404
        api.close()
        nobody = DeviceApi(http, f"http://127.0.0.1:{free_port()}", device.token)
        with pytest.raises(ServerUnreachableError, match="step gate: cannot reach"):
            nobody.gate(unknown, 5, {"seq": 1, "nodeId": "w1"})
        nobody.close()
