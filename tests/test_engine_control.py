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


class Pauser:
    """A control that holds the run (PAUSE) before step `at` for `hold_s` seconds of the clock, then
    answers `then`; it notes each question."""

    def __init__(
        self, clock: VirtualClock, at: int, hold_s: float, then: StepDecision = StepDecision.GO
    ) -> None:
        self.clock = clock
        self.at = at
        self.hold_s = hold_s
        self.then = then
        self.paused_from: datetime | None = None
        self.asked: list[tuple[int, datetime]] = []

    def before_step(self, node_id: str, seq: int) -> StepDecision:
        now = self.clock.now()
        self.asked.append((seq, now))
        if seq != self.at:
            return StepDecision.GO
        if self.paused_from is None:
            self.paused_from = now
        if (now - self.paused_from).total_seconds() < self.hold_s:
            return StepDecision.PAUSE
        return self.then


def test_pause_holds_between_steps_and_the_held_time_is_not_running_time() -> None:
    clock = VirtualClock()
    statuses: list[RunStatus] = []
    # timeoutS 5; the run is held 30 s before step 2 and still ends success
    definition = {**three_waits(), "timeoutS": 5}
    control = Pauser(clock, at=2, hold_s=30)
    result, _ = simulate(definition, clock=clock, control=control, on_status=statuses.append)
    assert result.status is RunStatus.SUCCESS, result.error_message
    assert [event.node_id for event in result.trace] == ["a", "b", "c"]
    assert statuses == [RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.RUNNING, RunStatus.SUCCESS]
    held = [at for seq, at in control.asked if seq == 2]
    assert len(held) > 2  # asked again and again while paused
    # no step started while paused: step b's start is after the last PAUSE answer
    b = result.trace[1]
    assert b.started_at >= held[-1]
    assert b.started_at > held[-2]
    assert (b.started_at - result.trace[0].started_at).total_seconds() >= 30


def test_cancel_while_paused_ends_the_run_cancelled_before_the_held_step() -> None:
    clock = VirtualClock()
    control = Pauser(clock, at=2, hold_s=10, then=StepDecision.CANCEL)
    result, _ = simulate(three_waits(), clock=clock, control=control)
    assert result.status is RunStatus.CANCELLED
    assert [event.node_id for event in result.trace] == ["a"]


def test_a_run_paused_for_24_hours_is_cancelled() -> None:
    clock = VirtualClock()
    control = Pauser(clock, at=2, hold_s=10 * 24 * 3600)
    result, _ = simulate(three_waits(), clock=clock, control=control)
    assert result.status is RunStatus.CANCELLED
    assert "paused for 24 h" in (result.error_message or "")
    assert [event.node_id for event in result.trace] == ["a"]
