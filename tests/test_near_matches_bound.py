"""What a failed find says was on screen instead compares texts for likeness only while they are
short: difflib's ratio of two long texts of a few hundred letters grows about as their lengths
squared (40,000 characters took 5 s, 400,000 would take minutes), and a simulated step's failure
computes it on the server for every text on screen. And the message that quotes a long text is cut,
so that the server takes a phone's report of it."""

from __future__ import annotations

import json
import random
from pathlib import Path

from interpreter.appmodel import AppModel
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.hierarchy import Bounds, UiNode
from interpreter.matcher import Selector
from interpreter.near_matches import on_screen_instead
from interpreter.simulator import SimulatedDevice


def _screen(*texts: str, resource_id: str = "") -> UiNode:
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    for index, text in enumerate(texts):
        bounds = Bounds(0, 100 * index, 1080, 100 * index + 90)
        root.children.append(UiNode("android.widget.TextView", bounds, text=text, resource_id=resource_id))
    return root


def test_long_texts_are_not_compared_for_likeness() -> None:
    rng = random.Random(7)
    letters = [chr(0x4E00 + i) for i in range(120)]  # none common enough for difflib to skip
    shown = "".join(rng.choice(letters) for _ in range(400_000))
    wanted = "".join(rng.choice(letters) for _ in range(400_000))
    words = on_screen_instead(_screen("Orders", shown), Selector(text=wanted))
    assert words.startswith("on screen: 'Orders'"), words[:200]
    long_id = "com.x:id/" + wanted
    words = on_screen_instead(
        _screen("Orders", resource_id="com.x:id/" + shown), Selector(resource_id=long_id)
    )
    assert words.startswith("on screen: 'Orders'"), words[:200]


def test_short_texts_still_get_their_likeness_hint() -> None:
    words = on_screen_instead(_screen("New order", "Settings"), Selector(text="New ordr"))
    assert words == "on screen instead: 'New order' (similar)"
    words = on_screen_instead(
        _screen("Save", resource_id="com.x:id/save_button"), Selector(resource_id="com.x:id/save_buton")
    )
    assert "similar resource id" in words


def test_items_numbered_like_the_text_are_named_as_such_not_as_similar() -> None:
    """'Item 49' is another item of the list 'Item 99' belongs to, not a near miss of it: the failure
    names the numbered items on screen, first to last (it said "'Item 49' (similar)")."""
    screen = _screen("Catalogue", "Item 47", "Item 48", "Item 49", "Item 50")
    assert on_screen_instead(screen, Selector(text="Item 99")) == (
        "on screen instead, numbered like it: 'Item 47' to 'Item 50'"
    )
    assert on_screen_instead(_screen("Catalogue", "Item 7"), Selector(text="Item 99")) == (
        "on screen instead, numbered like it: 'Item 7'"
    )
    # A case or whitespace difference still comes first; a text without a number is not a series.
    assert (
        on_screen_instead(screen, Selector(text="item 48")) == "on screen instead: 'Item 48' (case differs)"
    )
    assert on_screen_instead(_screen("Catalog", "Items"), Selector(text="Catalogue")).endswith("(similar)")


def test_a_failure_that_quotes_a_long_screen_text_is_cut_so_a_phone_can_report_it() -> None:
    # The server refuses a report whose trace message is over 10,000 characters: this run, on a phone,
    # could not be reported (its message quoted the 50,000 characters typed into the field).
    golden = Path(__file__).resolve().parent.parent / "golden_traces" / "plain_success"
    definition = json.loads((golden / "workflow.json").read_text(encoding="utf-8"))
    for node in definition["nodes"]:
        if node["id"] == "save":
            node["kind"], node["params"] = "action.waitForText", {"text": "Nope", "timeoutMs": 300}
    apps = AppModel.from_dict(json.loads((golden / "apps.json").read_text(encoding="utf-8")))
    clock = VirtualClock()
    device = SimulatedDevice(apps, clock)
    result = run_workflow(definition, device, inputs={"order": "x" * 50_000}, clock=clock).to_json()
    assert result["status"] == "failed"
    message = result["trace"][-1]["message"]
    assert message.startswith("no element with text 'Nope' on screen")
    assert message.endswith("more characters)"), message[-100:]
    assert len(message) < 10_000
    assert len(result["errorMessage"]) < 10_000
