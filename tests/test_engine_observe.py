"""The engine's step observer: sees every step start and end, with the element the step acted on."""

from __future__ import annotations

import json
from pathlib import Path

from interpreter.observe import Observers, StepEnded, StepStarted
from interpreter.trace import Outcome, RunStatus
from tests.test_engine import SHOP, node, simulate, workflow

CASE = Path(__file__).parent.parent / "golden_traces" / "plain_success"


class Notes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str]] = []
        self.ended: list[StepEnded] = []

    def step_started(self, started: StepStarted) -> None:
        self.seen.append(("start", started.seq, started.node_id))

    def step_ended(self, ended: StepEnded) -> None:
        self.seen.append(("end", ended.event.seq, ended.event.node_id))
        self.ended.append(ended)


def test_every_step_is_seen_starting_then_ending_with_the_element_it_acted_on() -> None:
    definition = json.loads((CASE / "workflow.json").read_text())
    inputs = json.loads((CASE / "inputs.json").read_text())
    notes, second = Notes(), Notes()
    result, _ = simulate(definition, inputs=inputs, observer=Observers(notes, second))
    assert result.status is RunStatus.SUCCESS
    expected = []
    for event in result.trace:
        expected += [("start", event.seq, event.node_id), ("end", event.seq, event.node_id)]
    assert notes.seen == expected == second.seen
    by_kind = {ended.event.kind: ended for ended in notes.ended}
    launch = by_kind["action.launchApp"]
    assert launch.acted_on is None
    assert not launch.ui
    tapped = by_kind["action.tapByText"]
    assert tapped.ui
    assert tapped.acted_on is not None
    assert tapped.acted_on.bounds.width > 0
    assert tapped.acted_on.bounds.height > 0


def test_a_step_that_found_nothing_has_no_acted_on_element() -> None:
    notes = Notes()
    definition = workflow(
        node("open", "action.launchApp", {"package": SHOP}, "tap"),
        node("tap", "action.tapByText", {"text": "Nope", "timeoutMs": 100}),
    )
    result, _ = simulate(definition, observer=notes)
    assert result.status is RunStatus.FAILED
    last = notes.ended[-1]
    assert last.event.outcome is Outcome.FAILED
    assert last.acted_on is None
    assert last.ui
