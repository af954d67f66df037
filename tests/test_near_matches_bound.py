"""What a failed find says was on screen instead compares texts for likeness only while they are
short: difflib's ratio of two long texts of a few hundred letters grows about as their lengths
squared (40,000 characters took 5 s, 400,000 would take minutes), and a simulated step's failure
computes it on the server for every text on screen."""

from __future__ import annotations

import random

from interpreter.hierarchy import Bounds, UiNode
from interpreter.matcher import Selector
from interpreter.near_matches import on_screen_instead


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
