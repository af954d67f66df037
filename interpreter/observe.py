"""Step observers: what sees each step start and end (the bridge's per-step screens, the simulator's).

    run_workflow(definition, device, observer=recorder)

The engine calls `step_started` right after its `RunControl` let a step go (before the step
touches the phone) and `step_ended` after the step's trace event was written and `on_event`
saw it (before the next step is asked for). Both run on the engine's thread, so an observer
may look at the device between steps; whatever takes time there adds to the run's wall
time, so keep heavy work (encoding, uploading) off that thread.

`ended.acted_on` is the element the step found on screen (the one it tapped, typed into, read
or waited for), with its bounds, or None for a step that found none. An observer is given to
the engine; it never changes what the engine does or writes in the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from interpreter.hierarchy import UiNode
from interpreter.trace import TraceEvent


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step about to run: its trace `seq` (1-based), node and kind, and its recorded start."""

    seq: int
    node_id: str
    kind: str
    started_at: datetime
    ui: bool


@dataclass(frozen=True, slots=True)
class StepEnded:
    """A step that ended: its trace event and the element it acted on (None when it found none)."""

    event: TraceEvent
    acted_on: UiNode | None
    ui: bool


class StepObserver(Protocol):
    def step_started(self, started: StepStarted) -> None:
        """Called before a step runs (after the run control let it go)."""
        ...

    def step_ended(self, ended: StepEnded) -> None:
        """Called after a step's trace event was written."""
        ...


class Observers:
    """Several observers as one, called in order (the engine takes one)."""

    def __init__(self, *observers: StepObserver) -> None:
        self.observers = observers

    def step_started(self, started: StepStarted) -> None:
        for observer in self.observers:
            observer.step_started(started)

    def step_ended(self, ended: StepEnded) -> None:
        for observer in self.observers:
            observer.step_ended(ended)
