"""Run control: what the engine asks before every step, and what it may be told.

    decision = control.before_step(node_id, seq)   # GO: start the step; CANCEL: end the run `cancelled`;
                                                   # PAUSE: hold, ask again a moment later

The engine takes the step's `startedAt` *before* it asks, and asks before every step (the
first included), so a step's recorded start always precedes the decision that let it run:
once a control has answered CANCEL, no step starts after that moment. A control may take
its time (the bridge's asks the server over HTTP); it may also raise `RunHalted` to end the
run `failed` with a message a person can act on (the bridge does when it knows the package
denylist changed and cannot fetch the new one).

`CancelWhen` turns a plain "is a cancel asked?" callable into a control; `ALWAYS_GO` is the
control of a run nobody can stop (the simulator's default).

PAUSE holds the run between steps: the engine reports `paused`, sleeps a moment on its clock and
asks again, until GO (it reports `running` and takes the step's start anew) or CANCEL. Time held
is not counted toward the run's `timeoutS`; a run held 24 h (the engine's `MAX_PAUSE_S`) ends `cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Protocol


class StepDecision(Enum):
    """What a run does at a step boundary."""

    GO = "go"
    CANCEL = "cancel"
    PAUSE = "pause"


class RunHalted(Exception):
    """Raised by `RunControl.before_step`: the run ends `failed` with `message`; no further step starts."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunControl(Protocol):
    def before_step(self, node_id: str, seq: int) -> StepDecision:
        """Asked before step `seq` (1-based, the trace event it would write) of node `node_id`."""
        ...


class _AlwaysGo:
    def before_step(self, node_id: str, seq: int) -> StepDecision:
        return StepDecision.GO


ALWAYS_GO: RunControl = _AlwaysGo()


class CancelWhen:
    """A control that cancels as soon as `should_cancel()` is true (asked before every step)."""

    def __init__(self, should_cancel: Callable[[], bool], then: RunControl = ALWAYS_GO) -> None:
        self.should_cancel = should_cancel
        self.then = then

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        if self.should_cancel():
            return StepDecision.CANCEL
        return self.then.before_step(node_id, seq)
