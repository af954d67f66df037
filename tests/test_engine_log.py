"""The engine's execution log: its decisions in order, beside the trace (interpreter/run_log.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interpreter import run_log
from interpreter.appmodel import AppModel
from interpreter.approvals import ScenarioApprovals
from interpreter.clock import VirtualClock
from interpreter.control import StepDecision
from interpreter.run_log import RunLog
from interpreter.simulator import SimulatedDevice
from interpreter.trace import RunStatus
from tests.test_engine import node, simulate, workflow
from tests.test_engine_control import Recorder

SHOP = "com.example.shop"
GOLDEN = Path(__file__).parent.parent / "golden_traces"


def kinds(log: list[dict[str, Any]]) -> list[str]:
    return [entry["kind"] for entry in log]


def of_kind(log: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["kind"] == kind]


def test_a_branching_run_logs_its_condition_the_variables_and_each_edge_in_order() -> None:
    definition = workflow(
        node("init", "control.setVar", {"name": "n", "value": 2}, "check"),
        node("check", "control.if", {"expr": "vars.n < 3"}, {"true": "small", "false": "big"}),
        node("small", "control.setVar", {"name": "size", "value": "small"}),
        node("big", "control.setVar", {"name": "size", "value": "big"}),
    )
    result, _ = simulate(definition, inputs={"who": "ann"})
    assert result.status is RunStatus.SUCCESS
    log = result.log
    assert [entry["seq"] for entry in log] == list(range(1, len(log) + 1))
    assert kinds(log) == [
        "start",
        "var-set",
        "step",
        "edge",
        "condition",
        "step",
        "edge",
        "var-set",
        "step",
        "edge",
        "end",
    ]
    assert log[0]["values"] == {"start": "init", "inputs": {"who": "ann"}}
    condition = of_kind(log, "condition")[0]
    assert condition["values"] == {"expr": "vars.n < 3", "value": True}
    assert (condition["step"], condition["nodeId"]) == (2, "check")
    assert condition["text"] == "vars.n < 3 was true"
    edges = [e["values"] for e in of_kind(log, "edge")]
    assert edges[1] == {"edge": "true", "to": "small", "outcome": "ok"}
    assert edges[2]["to"] is None
    assert [e["values"] for e in of_kind(log, "var-set")] == [
        {"name": "n", "value": 2},
        {"name": "size", "value": "small"},
    ]
    assert log[-1]["values"] == {"status": "success", "errorMessage": None, "steps": 3}
    assert log[-1]["step"] is None
    # The trace is what it was: the log is beside it, in the run's JSON under "log".
    data = result.to_json()
    assert data["log"] == log
    assert "log" not in data["trace"][0]
    json.dumps(data, allow_nan=False)


def test_a_retry_is_logged_with_its_delay_and_the_waits_polls_are_coalesced() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "wait"),
        node(
            "wait",
            "action.waitForText",
            {"text": "Never there", "timeoutMs": 1000},
            retry={"max": 2, "delayMs": 500},
        ),
    )
    result, clock = simulate(definition)
    assert result.status is RunStatus.FAILED
    log = result.log
    retries = of_kind(log, "retry")
    assert [r["values"]["attempt"] for r in retries] == [1, 2]
    assert retries[0]["values"]["delayMs"] == 500
    assert retries[0]["values"]["maxAttempts"] == 3
    assert "attempt 2 in 500 ms" in retries[0]["text"]
    assert retries[1]["atMs"] - retries[0]["atMs"] == 1500  # a 1 s wait and a 0.5 s delay apart
    polls = of_kind(log, "wait-poll")
    # One entry per attempt, however many looks: every 0.1 s for 1 s.
    assert len(polls) == 3
    for poll in polls:
        assert poll["count"] in (11, 12)  # a look at the end of the wait too (0.1 s steps add up to ~1 s)
        assert poll["lastAtMs"] - poll["atMs"] == 1000
        assert poll["values"]["selector"] == {"text": "Never there"}
        assert poll["step"] == 2
        assert poll["nodeId"] == "wait"
    assert kinds(log)[-3:] == ["step", "edge", "end"]
    assert "no 'failed' edge" in log[-2]["text"]


def test_a_failure_that_would_not_change_says_it_is_not_retried() -> None:
    definition = workflow(node("stop", "control.fail", {"message": "no"}, retry={"max": 3, "delayMs": 10}))
    result, _ = simulate(definition)
    (retry,) = of_kind(result.log, "retry")
    assert retry["values"] == {"attempt": 1, "maxAttempts": 4, "retried": False}


def test_an_approval_is_logged_when_asked_and_when_answered() -> None:
    definition = workflow(
        node(
            "ask",
            "control.approval",
            {"message": "Ship {{inputs.order}}?", "approvers": ["ann@example.com"], "timeoutS": 30},
            {"approved": "done", "rejected": "stop"},
        ),
        node("done", "control.setVar", {"name": "shipped", "value": True}),
        node("stop", "control.fail", {"message": "rejected"}),
    )
    gate = ScenarioApprovals.from_json(
        {"approvals": {"ask": {"decision": "approved", "by": "ann@example.com", "note": "go", "afterS": 4}}}
    )
    result, _ = simulate(definition, approvals=gate, inputs={"order": "A-1"})
    assert result.status is RunStatus.SUCCESS
    asked, answered = of_kind(result.log, "approval-asked"), of_kind(result.log, "approval-answered")
    assert asked[0]["values"] == {"message": "Ship A-1?", "approvers": ["ann@example.com"], "timeoutS": 30.0}
    assert answered[0]["values"] == {
        "decision": "approved",
        "by": "ann@example.com",
        "note": "go",
        "via": "scenario",
        "waitedMs": 4000,
    }
    assert answered[0]["atMs"] - asked[0]["atMs"] == 4000
    assert "approved by ann@example.com via scenario: go" in answered[0]["text"]
    (output,) = of_kind(result.log, "output-set")
    assert output["values"]["output"]["respondedBy"] == "ann@example.com"


def test_a_cancel_seen_before_a_step_is_logged_and_no_step_follows() -> None:
    clock = VirtualClock()
    control = Recorder(clock, {2: StepDecision.CANCEL})
    definition = workflow(node("a", "action.wait", {"ms": 100}, "b"), node("b", "action.wait", {"ms": 100}))
    result, _ = simulate(definition, clock=clock, control=control)
    assert result.status is RunStatus.CANCELLED
    cancel = of_kind(result.log, "cancel-seen")[0]
    assert (cancel["step"], cancel["nodeId"]) == (2, "b")
    assert kinds(result.log)[-2:] == ["cancel-seen", "end"]
    assert "step" not in kinds(result.log[result.log.index(cancel) :])


class PauseFor:
    """Answers PAUSE to the asks before step `seq` until `held_s` of clock time passed, then GO."""

    def __init__(self, clock: VirtualClock, seq: int, held_s: float) -> None:
        self.clock, self.seq, self.held_s = clock, seq, held_s
        self.since: float | None = None

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        if seq != self.seq:
            return StepDecision.GO
        if self.since is None:
            self.since = self.clock.monotonic()
        return StepDecision.PAUSE if self.clock.monotonic() - self.since < self.held_s else StepDecision.GO


def test_a_pause_is_one_entry_however_often_the_control_was_asked_then_resumed() -> None:
    clock = VirtualClock()
    definition = workflow(node("a", "action.wait", {"ms": 100}, "b"), node("b", "action.wait", {"ms": 100}))
    result, _ = simulate(definition, clock=clock, control=PauseFor(clock, 2, 3.0))
    assert result.status is RunStatus.SUCCESS
    (pause,) = of_kind(result.log, "pause-seen")
    assert pause["count"] == 6  # asked every 0.5 s: PAUSE at 0 … 2.5 s, GO at 3 s
    assert (pause["step"], pause["nodeId"]) == (2, "b")
    assert pause["lastAtMs"] - pause["atMs"] == 2500
    (resumed,) = of_kind(result.log, "resumed")
    assert resumed["values"] == {"heldMs": 3000}
    assert kinds(result.log).index("resumed") < kinds(result.log).index(
        "step", kinds(result.log).index("resumed")
    )


def test_a_scroll_logs_its_looks_as_one_entry() -> None:
    definition = json.loads((GOLDEN / "scroll_found" / "workflow.json").read_text())
    apps = AppModel.load(GOLDEN / "scroll_found" / "apps.json")
    clock = VirtualClock()
    device = SimulatedDevice(apps, clock, costs_ms={})
    result, _ = simulate(definition, clock=clock, device=device)
    assert result.status is RunStatus.SUCCESS, result.error_message
    (scroll,) = [p for p in of_kind(result.log, "wait-poll") if p["nodeId"] == "scroll"]
    assert scroll["count"] >= 2
    assert scroll["values"] == {"text": "Item 40", "swipe": "up", "maxSwipes": 10}
    assert scroll["text"].startswith("text 'Item 40' is not visible: swiping up")


def test_read_text_logs_the_variable_it_saves() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "sign"),
        node("sign", "action.tapByText", {"text": "Sign in"}, "read"),
        node("read", "action.readText", {"selector": {"text": "Orders"}, "saveAs": "title"}),
    )
    result, _ = simulate(definition)
    assert result.status is RunStatus.SUCCESS, result.error_message
    (var,) = of_kind(result.log, "var-set")
    assert var["values"] == {"name": "title", "value": "Orders"}
    assert var["nodeId"] == "read"
    (output,) = of_kind(result.log, "output-set")
    assert output["values"] == {"output": {"text": "Orders"}}


def test_the_log_of_a_long_loop_keeps_its_head_and_its_tail_with_a_marker_between() -> None:
    definition = workflow(
        node("a", "control.setVar", {"name": "x", "value": 1}, "b"),
        node("b", "control.setVar", {"name": "y", "value": 2}, "a"),
    )
    result, _ = simulate(definition)
    assert result.status is RunStatus.FAILED
    assert len(result.trace) == 10_000
    log = result.log
    assert len(log) == run_log.MAX_ENTRIES
    marker = log[run_log.HEAD_ENTRIES]
    assert marker["kind"] == "truncated"
    # 10,000 steps of three entries, the start and the end.
    assert marker["values"]["dropped"] == 30_002 - run_log.HEAD_ENTRIES - run_log.TAIL_ENTRIES
    assert marker["text"].startswith("… 29,703 more entries not kept")
    assert log[0]["kind"] == "start"
    assert log[-1]["kind"] == "end"
    assert log[-1]["seq"] == 30_002
    assert "10,000 node executions" in log[-1]["text"]
    assert len(json.dumps(log)) < 100_000


def test_values_and_texts_are_cut_to_their_bounds_and_made_sendable() -> None:
    log = RunLog()
    huge = {
        "body": "x" * 10_000,
        "list": list(range(5000)),
        "deep": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
    }
    log.add("output-set", "y" * 5000, {"output": huge, "bad": "nul\x00 and \ud800 half", "nan": float("nan")})
    (entry,) = log.to_json()
    assert len(entry["text"]) < run_log.MAX_TEXT + 40
    assert entry["text"].endswith("(4,700 more characters)")
    body = entry["values"]["output"]["body"]
    assert body.startswith("x" * run_log.MAX_STRING)
    assert body.endswith("(9,800 more characters)")
    assert any(
        isinstance(item, str) and item.endswith("more items") for item in entry["values"]["output"]["list"]
    )
    text = json.dumps(entry, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in text
    assert len(text) < 2 * run_log.MAX_VALUES_CHARS + run_log.MAX_TEXT + 200


def test_the_log_is_a_run_field_only_and_leaves_the_trace_as_it_was() -> None:
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "wait"),
        node("wait", "action.waitForText", {"text": "Orders", "timeoutMs": 500}),
    )
    result, _ = simulate(definition)
    assert [e.comparable() for e in result.trace] == [
        {
            "nodeId": "open",
            "kind": "action.launchApp",
            "outcome": "ok",
            "message": None,
            "attempts": 1,
            "output": {},
        },
        {
            "nodeId": "wait",
            "kind": "action.waitForText",
            "outcome": "failed",
            "message": result.trace[1].message,
            "attempts": 1,
            "output": {},
        },
    ]
