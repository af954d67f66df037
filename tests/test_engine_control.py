"""The engine's run control: asked before every step, after the step's start was taken."""

from __future__ import annotations

from datetime import datetime

from interpreter.clock import VirtualClock
from interpreter.control import RunHalted, StepDecision
from interpreter.trace import RunStatus
from tests.test_engine import node, simulate, workflow


def three_waits() -> dict[str, object]:
    return workflow(
        node("a", "action.wait", {"ms": 100}, "b"),
        node("b", "action.wait", {"ms": 100}, "c"),
        node("c", "action.wait", {"ms": 100}),
    )


class Recorder:
    """A control that notes each question (with the clock's time) and answers from a script."""

    def __init__(self, clock: VirtualClock, answers: dict[int, StepDecision] | None = None) -> None:
        self.clock = clock
        self.answers = answers or {}
        self.asked: list[tuple[str, int, datetime]] = []

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        self.asked.append((node_id, seq, self.clock.now()))
        self.clock.sleep(0.05)  # deciding takes time (the bridge asks the server)
        return self.answers.get(seq, StepDecision.GO)


def test_the_control_is_asked_before_every_step_after_its_start_was_taken() -> None:
    clock = VirtualClock()
    control = Recorder(clock)
    result, _ = simulate(three_waits(), clock=clock, control=control)
    assert result.status is RunStatus.SUCCESS
    assert [(node_id, seq) for node_id, seq, _ in control.asked] == [("a", 1), ("b", 2), ("c", 3)]
    for event, (_, _, asked_at) in zip(result.trace, control.asked, strict=True):
        assert event.started_at <= asked_at  # the step's start precedes the decision that let it run


def test_cancel_stops_before_the_step_it_was_asked_for() -> None:
    clock = VirtualClock()
    control = Recorder(clock, {2: StepDecision.CANCEL})
    result, _ = simulate(three_waits(), clock=clock, control=control)
    assert result.status is RunStatus.CANCELLED
    assert [event.node_id for event in result.trace] == ["a"]
    cancelled_at = control.asked[-1][2]
    assert all(event.started_at <= cancelled_at for event in result.trace)


def test_cancel_before_the_first_step_runs_nothing() -> None:
    clock = VirtualClock()
    result, _ = simulate(three_waits(), clock=clock, control=Recorder(clock, {1: StepDecision.CANCEL}))
    assert (result.status, result.trace, result.error_message) == (RunStatus.CANCELLED, [], None)


def test_a_halting_control_ends_the_run_failed_with_its_message() -> None:
    class Halting:
        def before_step(self, node_id: str, seq: int) -> StepDecision:
            if seq == 3:
                raise RunHalted("the denylist changed and could not be fetched; trigger the run again")
            return StepDecision.GO

    result, _ = simulate(three_waits(), control=Halting())
    assert result.status is RunStatus.FAILED
    assert [event.node_id for event in result.trace] == ["a", "b"]
    assert result.error_message == "the denylist changed and could not be fetched; trigger the run again"


def test_should_cancel_and_a_control_combine() -> None:
    clock = VirtualClock()
    control = Recorder(clock)
    result, _ = simulate(
        three_waits(), clock=clock, control=control, should_cancel=lambda: len(control.asked) >= 2
    )
    assert result.status is RunStatus.CANCELLED
    assert [event.node_id for event in result.trace] == ["a", "b"]
