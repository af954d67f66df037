"""A user's regex that backtracks polynomially (`.*a.*b.*c`: n^3 steps on a text of n characters that
fails) is stopped once it has used up its CPU time, with words saying how to rewrite it; on the old
code it ran to its end (minutes against 50,000 characters) and held the whole process meanwhile.
Ordinary patterns, long texts included, work as before."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from interpreter.appmodel import AppModel
from interpreter.clock import VirtualClock
from interpreter.denylist import Denylist
from interpreter.engine import run_workflow
from interpreter.hierarchy import Bounds, UiNode
from interpreter.matcher import Selector, find_all
from interpreter.run_inputs import check_inputs, input_problems
from interpreter.safe_regex import LookBudget, RegexBudget, RegexTooSlow
from interpreter.simulator import SimulatedDevice

GOLDEN = Path(__file__).resolve().parent.parent / "golden_traces" / "plain_success"
SLOW = ".*a.*b.*c"  # no exponential shape: safe_regex lets it through
LONG = "a" * 50_000


def _screen(*texts: str) -> UiNode:
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    for index, text in enumerate(texts):
        root.children.append(
            UiNode("android.widget.TextView", Bounds(0, 100 * index, 1080, 100 * index + 90), text=text)
        )
    return root


def test_a_selector_regex_that_takes_too_long_is_stopped_saying_how_to_rewrite_it() -> None:
    with pytest.raises(RegexTooSlow) as stopped:
        find_all(_screen("Orders", LONG), Selector(text_matches=SLOW))
    words = str(stopped.value)
    assert repr(SLOW) in words
    assert "50,000 characters" in words
    assert "[^a]*a[^b]*b" in words


def test_ordinary_patterns_on_long_texts_still_match() -> None:
    screen = _screen("Orders", LONG, "Total: 12.50 EUR")
    assert len(find_all(screen, Selector(text_matches="a+"))) == 1
    assert len(find_all(screen, Selector(text_matches=r"Total: \d+\.\d\d \w+"))) == 1
    assert len(find_all(screen, Selector(text_matches=".*Total.*"))) == 1
    assert len(find_all(screen, Selector(text_matches="(?i)orders"))) == 1


def test_a_run_whose_regexes_used_up_their_time_stops_at_its_next_look() -> None:
    run = RegexBudget(0.05)
    with pytest.raises(RegexTooSlow):
        run.look().fullmatch(SLOW, LONG)
    with pytest.raises(RegexTooSlow) as stopped:
        run.look().fullmatch("x", "x")  # even a pattern that costs nothing: the run's time is spent
    assert "in all" in str(stopped.value)
    assert LookBudget().fullmatch("x", "x")  # a budget of its own is not spent


def test_a_simulated_step_with_a_slow_regex_fails_with_the_words() -> None:
    definition: dict[str, Any] = json.loads((GOLDEN / "workflow.json").read_text(encoding="utf-8"))
    definition = copy.deepcopy(definition)
    check = next(node for node in definition["nodes"] if node["id"] == "save")
    check["kind"], check["params"] = "action.tapByText", {"text": SLOW, "match": "regex", "timeoutMs": 500}
    apps = AppModel.from_dict(json.loads((GOLDEN / "apps.json").read_text(encoding="utf-8")))
    clock = VirtualClock()
    result = run_workflow(
        definition, SimulatedDevice(apps, clock), inputs={"order": LONG}, clock=clock, denylist=Denylist()
    ).to_json()
    assert result["status"] == "failed", result["message"]
    last = result["trace"][-1]
    assert last["nodeId"] == "save"
    assert "was stopped" in last["message"], last
    assert "50,000 characters" in last["message"], last


def test_an_inputs_schema_regex_that_takes_too_long_is_stopped() -> None:
    schema = {"type": "object", "properties": {"order": {"type": "string", "pattern": SLOW}}}
    why = check_inputs(schema, {"order": LONG})
    assert why is not None
    assert "was stopped" in why
    assert repr(SLOW) in why
    keys = {"type": "object", "patternProperties": {SLOW: {"type": "string"}}, "additionalProperties": False}
    [problem] = input_problems(keys, {LONG: "x"})
    assert "was stopped" in problem.message
    # Ordinary patterns say what they always said.
    ordinary = {"type": "object", "properties": {"order": {"type": "string", "pattern": "^A-[0-9]+$"}}}
    assert check_inputs(ordinary, {"order": "A-1001"}) is None
    assert "does not match" in (check_inputs(ordinary, {"order": "B-1"}) or "")
    extra = {
        "type": "object",
        "properties": {"a": {}},
        "patternProperties": {"^x": {}},
        "additionalProperties": False,
    }
    [unexpected] = input_problems(extra, {"a": 1, "xy": 2, "b": 3})
    assert unexpected.message == "'b' does not match any of the regexes: '^x'"
