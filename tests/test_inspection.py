"""The screen inspector's selectors mean what the matcher means: each one's count is `find_all`'s
on the same hierarchy, its `index` picks the element it was made for, and unique ones come first."""

from __future__ import annotations

from typing import Any

import pytest

from interpreter.appmodel import sample_apps
from interpreter.appmodel.phone import PhoneState
from interpreter.hierarchy import Bounds, UiNode, from_android_xml, to_android_xml
from interpreter.inspection import inspect_hierarchy
from interpreter.matcher import Selector, find_all


def _screens() -> list[UiNode]:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    login = from_android_xml(to_android_xml(phone.hierarchy()))
    phone.tap(540, 700)  # Sign in: the orders screen, rows sharing a resource id
    orders = from_android_xml(to_android_xml(phone.hierarchy()))
    grid = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    window = UiNode("android.widget.FrameLayout", Bounds(0, 0, 1080, 2340), package="p.q")
    grid.children.append(window)
    for n in range(40):
        row, column = divmod(n, 4)
        text = " Same  label " if n % 3 == 0 else f"Cell {n}"  # whitespace the matcher folds
        window.children.append(
            UiNode(
                "android.widget.TextView",
                Bounds(column * 270, 100 + row * 100, column * 270 + 260, 190 + row * 100),
                text=text,
                content_desc="Same label" if n == 5 else "",
                resource_id=f"p.q:id/col{column}",
                clickable=n % 2 == 0,
            )
        )
    window.children.append(UiNode("android.widget.TextView", Bounds(0, 2300, 100, 2400), text="Off screen"))
    return [login, orders, grid]


def test_every_selector_counts_and_finds_as_the_matcher_does() -> None:
    for root in _screens():
        nodes = [node for node in root.walk() if node is not root]
        elements = inspect_hierarchy(root)["elements"]
        assert len(elements) == len(nodes)
        for node, element in zip(nodes, elements, strict=True):
            selectors = element["selectors"]
            if not element["visible"]:
                assert selectors == []
                continue
            assert selectors, element
            counts = [s["matches"] for s in selectors]
            assert [c != 1 for c in counts] == sorted(c != 1 for c in counts)  # unique ones first
            for found in selectors:
                fields = {k: v for k, v in found["selector"].items() if k != "index"}
                matches = find_all(root, Selector.from_dict(fields))
                assert len(matches) == found["matches"], (fields, element["text"])
                assert matches[found["selector"].get("index", 0)] is node
                assert found["unique"] == (found["matches"] == 1)


def test_many_elements_of_one_text_cost_about_their_number(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each element's place among the matches of its selector was searched for in the whole list: 10,000
    # elements of one text took 5.6 s, a 4 MB hierarchy minutes (POST /inspect/hierarchy). The work is
    # counted as the elements the inspector walks through in those lists.
    import interpreter.inspection as inspection

    walked = 0

    def counting_enumerate(items: Any, start: int = 0) -> Any:
        nonlocal walked
        for pair in enumerate(items, start):
            walked += 1
            yield pair

    monkeypatch.setattr(inspection, "enumerate", counting_enumerate, raising=False)
    count = 3000
    nodes = "".join(
        f'<node class="android.widget.TextView" text="Same" bounds="[0,{i % 2000}][100,{i % 2000 + 1}]" />'
        for i in range(count)
    )
    window = '<node class="android.widget.FrameLayout" bounds="[0,0][1080,2340]">'
    xml = f'<hierarchy rotation="0">{window}{nodes}</node></hierarchy>'
    elements = inspection.inspect_hierarchy(from_android_xml(xml))["elements"]
    texts = [e for e in elements if e["text"] == "Same"]
    indexes = sorted(
        s["selector"].get("index", 0)
        for e in texts
        for s in e["selectors"]
        if set(s["selector"]) - {"index"} == {"text"}
    )
    assert indexes == list(range(count))  # each found at its own place
    assert walked < 20 * count, walked
