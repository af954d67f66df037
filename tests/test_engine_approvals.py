"""Approval gates: the scenario gate, timeouts on the run's clock, cancel while waiting."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from interpreter.appmodel import sample_apps
from interpreter.approvals import (
    ApprovalDecision,
    ApprovalResponse,
    NoApprovals,
    ScenarioApprovals,
)
from interpreter.clock import Clock, RealClock, VirtualClock
from interpreter.engine import run_workflow
from interpreter.errors import WorkflowError
from interpreter.simulator import SimulatedDevice
from interpreter.trace import RunStatus


def approval_workflow(
    timeout_s: int = 30, edges: Any = None, run_timeout_s: int | None = None
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "schemaVersion": 1,
        "name": "approve",
        "start": "ask",
        "nodes": [
            {
                "id": "ask",
                "kind": "control.approval",
                "params": {"message": "Ship {{inputs.order}}?", "approvers": ["ann"], "timeoutS": timeout_s},
                "next": edges or {"approved": "yes", "rejected": "no"},
            },
            {"id": "yes", "kind": "control.setVar", "params": {"name": "ok", "value": True}},
            {
                "id": "no",
                "kind": "control.fail",
                "params": {"message": "refused: {{nodes.ask.output.responseNote}}"},
            },
        ],
    }
    if run_timeout_s is not None:
        definition["timeoutS"] = run_timeout_s
    return definition


def run(definition: dict[str, Any], clock: Clock | None = None, **kwargs: Any):
    clock = clock or VirtualClock()
    device = SimulatedDevice(sample_apps(), clock)
    return run_workflow(definition, device, clock=clock, inputs={"order": "A-1"}, **kwargs), clock


def test_an_answer_later_than_the_timeout_is_a_timeout() -> None:
    gate = ScenarioApprovals.from_json({"approvals": {"ask": {"decision": "approved", "afterS": 31}}})
    result, clock = run(approval_workflow(timeout_s=30, edges="yes"), approvals=gate)
    assert result.status is RunStatus.FAILED
    assert result.trace[-1].message == "no answer to the approval within 30 s"
    assert clock.monotonic() == 30


def test_without_a_gate_every_approval_times_out() -> None:
    result, clock = run(approval_workflow(timeout_s=5))
    assert result.trace[0].message == "no answer to the approval within 5 s"
    # The outputs are there, null, so that a template on the rejected path resolves.
    assert result.trace[0].output == {"respondedBy": None, "responseNote": None, "respondedVia": None}
    assert [e.node_id for e in result.trace] == ["ask", "no"]  # the rejected edge, for a timeout too
    assert result.trace[-1].message == "refused: null"
    assert clock.monotonic() == 5


def test_waiting_is_not_running_time() -> None:
    """A 10 s run waits 600 s for its approval (the wait does not count), then still has its 10 s."""
    gate = ScenarioApprovals.from_json(
        {"approvals": {"ask": {"decision": "approved", "by": "ann", "afterS": 590}}}
    )
    definition = approval_workflow(timeout_s=600, run_timeout_s=10)
    definition["nodes"][1] = {"id": "yes", "kind": "action.wait", "params": {"ms": 9000}}
    result, clock = run(definition, approvals=gate)
    assert result.status is RunStatus.SUCCESS
    assert clock.monotonic() == 599
    over = approval_workflow(timeout_s=600, run_timeout_s=10)
    over["nodes"][1] = {"id": "yes", "kind": "action.wait", "params": {"ms": 11000}}
    result, clock = run(
        over, approvals=ScenarioApprovals.from_json({"approvals": {"ask": {"decision": "approved"}}})
    )
    assert result.status is RunStatus.TIMEOUT  # running time alone passed the cap
    assert clock.monotonic() == 10


def test_timeout_0_waits_without_a_time_limit() -> None:
    late = ScenarioApprovals.from_json(
        {"approvals": {"ask": {"decision": "approved", "by": "ann", "afterS": 86400 * 3}}}
    )
    result, clock = run(approval_workflow(timeout_s=0, run_timeout_s=5), approvals=late)
    assert result.status is RunStatus.SUCCESS
    assert result.trace[0].output == {"respondedBy": "ann", "responseNote": None, "respondedVia": "scenario"}
    assert clock.monotonic() == 86400 * 3
    asked: list[float] = []

    class RecordingGate:
        def request(self, *, timeout_s: float, **_: Any) -> ApprovalResponse:
            asked.append(timeout_s)
            return ApprovalResponse(ApprovalDecision.REJECTED, "bob", "no", "dashboard")

    run(approval_workflow(timeout_s=0), approvals=RecordingGate())
    assert asked == [0]  # the gate is told: no limit


@pytest.mark.parametrize("gate", [NoApprovals(), ScenarioApprovals.from_json({"approvals": {}})])
def test_a_simulated_approval_nobody_answers_without_a_limit_fails_instead_of_hanging(gate: Any) -> None:
    result, clock = run(approval_workflow(timeout_s=0), approvals=gate)
    assert result.status is RunStatus.FAILED
    assert result.trace[0].message == (
        "approval 'ask' waits without a time limit (timeoutS 0) and nothing answers it here: "
        "give it an answer in the scenario, or a timeoutS"
    )
    assert clock.monotonic() == 0


def test_the_gate_gets_the_rendered_message_and_approvers() -> None:
    asked: list[dict[str, Any]] = []

    class RecordingGate:
        def request(self, **kwargs: Any) -> ApprovalResponse:
            asked.append(kwargs)
            return ApprovalResponse(ApprovalDecision.APPROVED, "ann", None, "api")

    result, _ = run(approval_workflow(), approvals=RecordingGate(), run_id="run-5")
    assert result.status is RunStatus.SUCCESS
    assert asked[0]["message"] == "Ship A-1?"
    assert asked[0]["approvers"] == ["ann"]
    assert asked[0]["node_id"] == "ask"
    assert asked[0]["run_id"] == "run-5"
    assert asked[0]["timeout_s"] == 30
    assert result.trace[0].output == {"respondedBy": "ann", "responseNote": None, "respondedVia": "api"}


class CancellableGate:
    """A gate like the server's: waits for an answer, and answers "cancelled" when the run is cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.waiting = threading.Event()

    def request(self, *, timeout_s: float, **kwargs: Any) -> ApprovalResponse:
        self.waiting.set()
        if self.cancelled.wait(timeout_s):
            return ApprovalResponse(ApprovalDecision.REJECTED, None, "cancelled", "system")
        return ApprovalResponse(ApprovalDecision.TIMED_OUT)


def test_cancel_while_waiting_for_approval_ends_the_run_cancelled() -> None:
    gate = CancellableGate()
    outcome: dict[str, Any] = {}

    def runner() -> None:
        outcome["result"], _ = run(
            approval_workflow(timeout_s=30),
            clock=RealClock(),
            approvals=gate,
            should_cancel=gate.cancelled.is_set,
        )

    thread = threading.Thread(target=runner)
    thread.start()
    assert gate.waiting.wait(5)
    gate.cancelled.set()
    thread.join(5)
    result = outcome["result"]
    assert result.status is RunStatus.CANCELLED
    assert [e.node_id for e in result.trace] == ["ask"]
    assert result.trace[0].message == "rejected: cancelled"


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ([], "must be a JSON object"),
        ({"approval": {}}, "unknown key(s) ['approval']"),
        (
            {"approvals": {"ask": {"decision": "maybe"}}},
            "'decision' must be 'approved', 'rejected' or 'timeout'",
        ),
        ({"approvals": {"ask": {"decision": "approved", "afterS": -1}}}, "'afterS' must be a number"),
        ({"approvals": {"ask": {"decision": "approved", "by": 3}}}, "'by' must be a string"),
        ({"approvals": {"ask": {"decision": "approved", "who": "x"}}}, "unknown key(s) ['who']"),
    ],
)
def test_a_bad_scenario_says_what_is_wrong(scenario: Any, words: str) -> None:
    with pytest.raises(WorkflowError) as info:
        ScenarioApprovals.from_json(scenario, source="case/scenario.json")
    assert words in str(info.value)
    assert str(info.value).startswith("case/scenario.json")
