"""Trace events and run statuses: the shapes every part of phoneflow shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    PAUSED = "paused"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def rank(self) -> int:
        """How far along the lifecycle a status is: a report may only raise it."""
        if self is RunStatus.QUEUED:
            return 0
        if self in (RunStatus.RUNNING, RunStatus.WAITING_FOR_APPROVAL, RunStatus.PAUSED):
            return 1
        return 2


TERMINAL_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT})

# The allowed moves, written once. `running ⇄ waiting_for_approval`, `running ⇄ paused` (a step
# in flight when the pause came may still ask for an approval); every non-terminal status may end;
# nothing leaves a terminal status.
ALLOWED_MOVES: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, *TERMINAL_STATUSES}),
    RunStatus.RUNNING: frozenset({RunStatus.WAITING_FOR_APPROVAL, RunStatus.PAUSED, *TERMINAL_STATUSES}),
    RunStatus.WAITING_FOR_APPROVAL: frozenset({RunStatus.RUNNING, *TERMINAL_STATUSES}),
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.WAITING_FOR_APPROVAL, *TERMINAL_STATUSES}),
    RunStatus.SUCCESS: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.TIMEOUT: frozenset(),
}


def can_move(current: RunStatus, new: RunStatus) -> bool:
    """Whether a run in `current` may move to `new` (staying put is always allowed)."""
    return new == current or new in ALLOWED_MOVES[current]


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, as in every payload."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class TraceEvent:
    seq: int
    node_id: str
    kind: str
    outcome: Outcome
    message: str | None
    started_at: datetime
    duration_ms: int
    attempts: int
    output: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "nodeId": self.node_id,
            "kind": self.kind,
            "outcome": self.outcome.value,
            "message": self.message,
            "startedAt": iso_utc(self.started_at),
            "durationMs": self.duration_ms,
            "attempts": self.attempts,
            "output": self.output,
        }

    def comparable(self) -> dict[str, Any]:
        """The fields a golden trace fixes (no times)."""
        return {
            "nodeId": self.node_id,
            "kind": self.kind,
            "outcome": self.outcome.value,
            "message": self.message,
            "attempts": self.attempts,
            "output": self.output,
        }
