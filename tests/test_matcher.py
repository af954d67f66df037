"""The element matcher over a model hierarchy and over the same hierarchy dumped to XML and read back."""

from __future__ import annotations

import pytest

from interpreter.appmodel import PhoneState, sample_apps
from interpreter.hierarchy import Bounds, UiNode, from_android_xml, to_android_xml
from interpreter.matcher import Selector, find, find_all, tap_by_text_selector, visible_texts


def orders_screen() -> UiNode:
    phone = PhoneState(sample_apps(), now=lambda: 10.0)
    phone.launch("com.example.shop")
    phone.tap(*_center(phone.hierarchy(), "Sign in"))
    assert phone.foreground_activity() == "com.example.shop.OrdersActivity"
    return phone.hierarchy()


def login_screen() -> UiNode:
    phone = PhoneState(sample_apps(), now=lambda: 0.0)
    phone.launch("com.example.shop")
    return phone.hierarchy()


def _center(root: UiNode, text: str) -> tuple[int, int]:
    node = find(root, Selector(text=text))
    assert node is not None, text
    return node.bounds.center


def round_trip(root: UiNode) -> UiNode:
    return from_android_xml(to_android_xml(root))


@pytest.fixture(params=["model", "xml"])
def source(request: pytest.FixtureRequest):
    """A function turning a model hierarchy into what the matcher sees from this source."""
    return (lambda root: root) if request.param == "model" else round_trip


def texts(nodes: list[UiNode]) -> list[str]:
    return [n.text for n in nodes]


def test_exact_text_is_trimmed_and_case_sensitive(source) -> None:
    root = source(orders_screen())
    assert texts(find_all(root, Selector(text="New order"))) == ["New order"]
    assert texts(find_all(root, Selector(text="  New order "))) == ["New order"]
    assert find_all(root, Selector(text="new order")) == []
    assert find_all(root, Selector(text="New")) == []


def test_exact_text_falls_back_to_content_desc(source) -> None:
    root = source(login_screen())
    (user,) = find_all(root, Selector(text="User"))
    assert user.resource_id == "com.example.shop:id/user"


def test_contains_is_case_insensitive_and_puts_clickable_first(source) -> None:
    root = source(orders_screen())
    found = texts(find_all(root, tap_by_text_selector("ORDER", "contains")))
    assert found == ["New order", "Orders", "Order 1003", "Order 1002", "Order 1001"]


def test_regex_fullmatch(source) -> None:
    root = source(orders_screen())
    assert texts(find_all(root, tap_by_text_selector(r"Order \d+", "regex"))) == [
        "Order 1003",
        "Order 1002",
        "Order 1001",
    ]
    assert find_all(root, tap_by_text_selector("Order", "regex")) == []


def test_bad_regex_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"invalid regex 'Order \(': missing \), unterminated subpattern"):
        tap_by_text_selector("Order (", "regex")
    with pytest.raises(ValueError, match="invalid regex"):
        Selector.from_dict({"textMatches": "[a-"})


def test_resource_id_description_and_class_name(source) -> None:
    root = source(login_screen())
    (password,) = find_all(root, Selector(resource_id="com.example.shop:id/password"))
    assert password.password
    assert find(root, Selector(description="Password")) == password
    edits = find_all(root, Selector(class_name="android.widget.EditText"))
    assert [n.resource_id for n in edits] == ["com.example.shop:id/user", "com.example.shop:id/password"]
    assert find_all(root, Selector(class_name="EditText")) == edits
    assert find_all(root, Selector(class_name="widget.EditText")) == []


def test_fields_combine_with_and(source) -> None:
    root = source(orders_screen())
    rows = Selector(resource_id="com.example.shop:id/order_row", text_contains="1002")
    assert texts(find_all(root, rows)) == ["Order 1002"]


def test_index_picks_in_match_order(source) -> None:
    root = source(orders_screen())
    rows = {"resourceId": "com.example.shop:id/order_row"}
    assert find(root, Selector.from_dict(rows)).text == "Order 1003"
    assert find(root, Selector.from_dict({**rows, "index": 2})).text == "Order 1001"
    assert find(root, Selector.from_dict({**rows, "index": 3})) is None


def _node(text: str, bounds: Bounds, clickable: bool = False) -> UiNode:
    return UiNode("android.widget.TextView", bounds, text=text, clickable=clickable)


def synthetic_tree() -> UiNode:
    window = UiNode("android.widget.FrameLayout", Bounds(0, 0, 1080, 2340))
    window.children = [
        _node("Go top", Bounds(0, 100, 500, 200)),
        _node("Go right", Bounds(600, 300, 1000, 400)),
        _node("Go left", Bounds(0, 300, 500, 400)),
        _node("Go button", Bounds(0, 900, 500, 1000), clickable=True),
        _node("Go below", Bounds(0, 2300, 500, 2400)),  # hangs off the bottom
        _node("Go left of", Bounds(-10, 500, 500, 600)),
        _node("Go empty", Bounds(10, 700, 10, 800)),
    ]
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    root.children = [window]
    return root


def test_order_clickable_then_top_then_left_and_only_visible(source) -> None:
    root = source(synthetic_tree())
    assert texts(find_all(root, Selector(text_contains="go"))) == [
        "Go button",
        "Go top",
        "Go left",
        "Go right",
    ]


def test_root_is_never_matched() -> None:
    assert find_all(synthetic_tree(), Selector(class_name="hierarchy")) == []


def test_selector_dict_errors_are_readable() -> None:
    with pytest.raises(ValueError, match="unknown selector key"):
        Selector.from_dict({"txt": "Save"})
    with pytest.raises(ValueError, match="needs at least one of"):
        Selector.from_dict({"index": 1})
    with pytest.raises(ValueError, match="must be a string"):
        Selector.from_dict({"text": 3})
    with pytest.raises(ValueError, match="index must be an integer"):
        Selector.from_dict({"text": "a", "index": "1"})
    with pytest.raises(ValueError, match="index must be 0 or more"):
        Selector.from_dict({"text": "a", "index": -1})
    with pytest.raises(ValueError, match="unknown match 'fuzzy'"):
        tap_by_text_selector("a", "fuzzy")  # type: ignore[arg-type]


def test_describe_for_messages() -> None:
    assert Selector(text="New order").describe() == "text 'New order'"
    assert Selector(resource_id="a:id/b", index=1).describe() == "resourceId 'a:id/b' (index 1)"


def test_visible_texts_top_to_bottom() -> None:
    assert visible_texts(synthetic_tree()) == ["Go top", "Go left", "Go right", "Go button"]


def test_the_hierarchy_root_gives_the_screen_size() -> None:
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2400))
    window = UiNode("android.widget.FrameLayout", Bounds(0, 0, 1080, 2400))
    window.children = [_node("Low", Bounds(0, 2350, 500, 2390))]
    root.children = [window]
    assert texts(find_all(root, Selector(text="Low"))) == ["Low"]
    assert find_all(window, Selector(text="Low")) == []  # no hierarchy root: a 1080x2340 screen
    assert visible_texts(root) == ["Low"]


def _labels(*texts: str) -> UiNode:
    root = UiNode("hierarchy", Bounds(0, 0, 1080, 2340))
    root.children = [
        UiNode("android.widget.TextView", Bounds(0, 100 * i, 500, 100 * i + 80), text=text)
        for i, text in enumerate(texts, start=1)
    ]
    return root


@pytest.mark.parametrize("raw", [False, True])
def test_whitespace_is_compared_plain_whether_a_dump_kept_it_or_not(raw: bool) -> None:
    """A tab or line break matches a space, whether the dump escaped it or wrote it raw (read as a space)."""
    model = _labels("Tab\tButton", "two\nlines", "no\u00a0break", "two  spaces")
    xml = to_android_xml(model)
    if raw:
        xml = xml.replace("&#9;", "\t").replace("&#10;", "\n")
    root = from_android_xml(xml)
    for wanted in ("Tab Button", "Tab\tButton", "two lines", "no break", "two spaces", " two   spaces "):
        assert find(root, Selector(text=wanted)) is not None, wanted
    assert find(root, Selector(text_contains="TAB BUTTON")) is not None
    assert find(root, Selector(text="TabButton")) is None
    assert find(root, Selector(text_matches=r"Tab\sButton")) is not None
    assert texts(find_all(root, Selector(text="two lines"))) == ["two lines" if raw else "two\nlines"]


def test_a_selector_of_several_fields_says_which_one_the_element_on_screen_does_not_fit() -> None:
    """The text is there, but the class (or id, description, text) the selector also asks for differs:
    the failure names that field and what the element holds, not a 'whitespace differs' it does not."""
    from interpreter.near_matches import on_screen_instead

    root = orders_screen()
    button = "android.widget.Button"
    assert on_screen_instead(root, Selector(text="Refresh", class_name="TextView")) == (
        f"'Refresh' is there, but its class is {button}, not 'TextView'"
    )
    assert on_screen_instead(root, Selector(text_contains="refr", class_name="TextView")) == (
        f"'Refresh' is there, but its class is {button}, not 'TextView'"
    )
    assert on_screen_instead(root, Selector(text="Refresh", resource_id="com.example.shop:id/reload")) == (
        "'Refresh' is there, but its resource id is 'com.example.shop:id/refresh', "
        "not 'com.example.shop:id/reload'"
    )
    assert on_screen_instead(root, Selector(text="Reload", resource_id="com.example.shop:id/refresh")) == (
        "'Refresh' is there, but its text is 'Refresh', not 'Reload'"
    )
    # One field alone keeps its own words.
    assert on_screen_instead(root, Selector(text="refresh")) == "on screen instead: 'Refresh' (case differs)"


def test_a_match_an_open_menu_covers_comes_after_the_menus_own() -> None:
    """With the options menu open, 'New order' is both the screen's button and a menu row; the button's
    centre lies under the menu, so a tap there would land on the menu's 'Help' row. The menu's row comes
    first; a toast, which takes no touch, changes no order."""
    phone = PhoneState(sample_apps(), now=lambda: 10.0)
    phone.launch("com.example.shop")
    phone.tap(*_center(phone.hierarchy(), "Sign in"))
    button = find(phone.hierarchy(), Selector(text="New order"))
    assert button is not None
    assert button.class_name == "android.widget.Button"
    phone.press_key("menu")
    first, second = find_all(phone.hierarchy(), Selector(text="New order"))
    assert (first.resource_id, second.class_name) == ("android:id/title", "android.widget.Button")
    phone.tap(*first.bounds.center)
    assert phone.foreground_activity() == "com.example.shop.NewOrderActivity"
    phone.press_key("back")
    phone.show_toast("Saved", "com.example.shop", 60)
    assert find(phone.hierarchy(), Selector(text="New order")) == button
