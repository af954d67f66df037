"""Approval gates: how a `control.approval` node gets its answer.

The engine asks an `ApprovalGate` and blocks until it answers. The server wires a
gate that waits for a person (dashboard, API); the simulator and the golden cases
answer from a scenario file with `ScenarioApprovals`; `NoApprovals` answers nobody
and lets every request time out.

A gate must answer within `timeout_s` of the clock it is given (or say `timed_out`),
and answer `rejected` with the note "cancelled" when the run is cancelled meanwhile.
`timeout_s` 0 means no time limit: a gate that knows nobody will ever answer (a simulation
without a scripted answer) raises `NoAnswerComing` instead of waiting forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from interpreter.clock import Clock
from interpreter.errors import WorkflowError


class NoAnswerComing(Exception):
    """An approval without a time limit that nobody is going to answer (in a simulation)."""


def _never_answered(node_id: str) -> NoAnswerComing:
    return NoAnswerComing(
        f"approval '{node_id}' waits without a time limit (timeoutS 0) and nothing answers it here: "
        "give it an answer in the scenario, or a timeoutS"
    )


class ApprovalDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class ApprovalResponse:
    decision: ApprovalDecision
    responded_by: str | None = None
    note: str | None = None
    via: str | None = None


class ApprovalGate(Protocol):
    def request(
        self,
        *,
        run_id: str,
        node_id: str,
        message: str,
        approvers: list[str],
        timeout_s: float,
        clock: Clock,
    ) -> ApprovalResponse:
        """Block until someone answers the approval, or `timeout_s` of `clock` time passes."""
        ...


class NoApprovals:
    """A gate nobody answers: each request waits its timeout on the clock, then times out."""

    def request(
        self,
        *,
        run_id: str,
        node_id: str,
        message: str,
        approvers: list[str],
        timeout_s: float,
        clock: Clock,
    ) -> ApprovalResponse:
        if timeout_s == 0:
            raise _never_answered(node_id)
        clock.sleep(timeout_s)
        return ApprovalResponse(ApprovalDecision.TIMED_OUT)


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    """How a scenario answers one approval node."""

    decision: ApprovalDecision
    responded_by: str | None = None
    note: str | None = None
    via: str | None = "scenario"
    after_s: float = 0.0


_ANSWER_KEYS = frozenset({"decision", "by", "note", "via", "afterS"})


class ScenarioApprovals:
    """Answers approvals from a golden case's `scenario.json`.

    The file looks like::

        {"approvals": {
            "ask": {"decision": "approved", "by": "alice", "note": "fine", "via": "dashboard", "afterS": 0.5},
            "ask2": {"decision": "rejected", "by": "bob", "note": "not today"},
            "ask3": {"decision": "timeout"}
        }}

    An answer comes `afterS` seconds of clock time after the request (default 0); when
    that is later than the node's timeout, or the node is not listed, or the decision is
    `timeout`, the request waits the whole timeout and times out. A node without a time limit
    (`timeoutS` 0) waits as long as `afterS` says; unanswered, it is `NoAnswerComing`.
    """

    def __init__(self, answers: Mapping[str, ScriptedAnswer] | None = None) -> None:
        self.answers: dict[str, ScriptedAnswer] = dict(answers or {})

    @classmethod
    def from_json(cls, data: Any, *, source: str = "scenario.json") -> ScenarioApprovals:
        """Build from the parsed scenario JSON; `WorkflowError` says what is wrong and where."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise WorkflowError(f"{source}: the scenario must be a JSON object like {{'approvals': {{...}}}}")
        unknown = set(data) - {"approvals"}
        if unknown:
            raise WorkflowError(f"{source}: unknown key(s) {sorted(unknown)}; only 'approvals' is allowed")
        raw = data.get("approvals", {})
        if not isinstance(raw, Mapping):
            raise WorkflowError(f"{source}: 'approvals' must map node ids to answers")
        return cls({str(node_id): _parse_answer(node_id, spec, source) for node_id, spec in raw.items()})

    def request(
        self,
        *,
        run_id: str,
        node_id: str,
        message: str,
        approvers: list[str],
        timeout_s: float,
        clock: Clock,
    ) -> ApprovalResponse:
        answer = self.answers.get(node_id)
        unanswered = answer is None or answer.decision is ApprovalDecision.TIMED_OUT
        if timeout_s == 0 and unanswered:
            raise _never_answered(node_id)
        if answer is None or unanswered or (timeout_s and answer.after_s > timeout_s):
            clock.sleep(timeout_s)
            return ApprovalResponse(ApprovalDecision.TIMED_OUT)
        clock.sleep(answer.after_s)
        return ApprovalResponse(answer.decision, answer.responded_by, answer.note, answer.via)


def _parse_answer(node_id: str, spec: Any, source: str) -> ScriptedAnswer:
    where = f"{source}: approvals.{node_id}"
    if not isinstance(spec, Mapping):
        raise WorkflowError(f"{where} must be an object like {{'decision': 'approved', 'by': 'alice'}}")
    unknown = set(spec) - _ANSWER_KEYS
    if unknown:
        raise WorkflowError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_ANSWER_KEYS)}")
    decision_text = spec.get("decision")
    decisions = {"approved": ApprovalDecision.APPROVED, "rejected": ApprovalDecision.REJECTED}
    decisions |= {"timeout": ApprovalDecision.TIMED_OUT, "timed_out": ApprovalDecision.TIMED_OUT}
    if decision_text not in decisions:
        raise WorkflowError(
            f"{where}: 'decision' must be 'approved', 'rejected' or 'timeout', not {decision_text!r}"
        )
    after_s = spec.get("afterS", 0)
    if isinstance(after_s, bool) or not isinstance(after_s, (int, float)) or after_s < 0:
        raise WorkflowError(f"{where}: 'afterS' must be a number of seconds >= 0, not {after_s!r}")
    for key in ("by", "note", "via"):
        if key in spec and spec[key] is not None and not isinstance(spec[key], str):
            raise WorkflowError(f"{where}: '{key}' must be a string")
    return ScriptedAnswer(
        decision=decisions[decision_text],
        responded_by=spec.get("by"),
        note=spec.get("note"),
        via=spec.get("via", "scenario"),
        after_s=float(after_s),
    )
