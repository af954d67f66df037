"""The app model: loading, validation messages, and the layout's invariants."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpreter.appmodel import (
    LAUNCHER_PACKAGE,
    AppModel,
    PhoneState,
    ScreenView,
    Window,
    app_model_schema,
    layout_home,
    layout_screen,
    sample_apps,
    sample_apps_path,
)
from interpreter.appmodel.layout import CONTENT_BOTTOM, CONTENT_TOP
from interpreter.errors import AppModelError
from interpreter.hierarchy import Bounds, UiNode


def tiny_model() -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "apps": [
            {
                "package": "com.example.tiny",
                "label": "Tiny",
                "startScreen": "home",
                "screens": [
                    {
                        "id": "home",
                        "title": "Tiny",
                        "widgets": [
                            {"id": "go", "class": "Button", "text": "Go", "onClick": [{"goTo": "next_page"}]},
                            {"id": "label", "text": "Hello"},
                        ],
                    },
                    {"id": "next_page", "widgets": [{"id": "done", "text": "Done"}]},
                ],
            }
        ],
    }


def error_of(data: Any) -> str:
    with pytest.raises(AppModelError) as caught:
        AppModel.from_dict(data)
    return str(caught.value)


def test_schema_is_valid_draft_2020_12() -> None:
    schema = app_model_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_sample_apps_load_with_the_four_apps() -> None:
    model = sample_apps()
    assert model.packages == [
        "com.example.shop",
        "com.android.settings",
        "com.bank.app",
        "com.example.catalogue",
    ]
    assert AppModel.load(sample_apps_path()).packages == model.packages
    shop = model.app("com.example.shop")
    assert shop.label == "Shop"
    assert shop.launch_activity == "com.example.shop.LoginActivity"
    assert shop.screen("orders").activity == "com.example.shop.OrdersActivity"


def test_defaults_fill_activity_class_and_clickable() -> None:
    model = AppModel.from_dict(tiny_model())
    app = model.app("com.example.tiny")
    assert app.screen("next_page").activity == "com.example.tiny.NextPageActivity"
    go = app.screen("home").widget("go")
    assert go.class_name == "android.widget.Button"
    assert go.clickable
    label = app.screen("home").widget("label")
    assert label.class_name == "android.widget.TextView"
    assert not label.clickable


def test_repeat_expands_and_substitutes_n() -> None:
    model = sample_apps()
    screen = model.app("com.example.catalogue").screen("list")
    assert screen.widget("item1").text == "Item 1"
    assert screen.widget("item60").text == "Item 60"
    assert "item61" not in screen.by_id


def test_missing_required_property_names_the_pointer() -> None:
    data = tiny_model()
    del data["apps"][0]["label"]
    message = error_of(data)
    assert "/apps/0: 'label' is a required property" in message
    assert "add the missing property" in message


def test_unknown_widget_property_names_the_pointer_and_the_allowed_ones() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][1]["txt"] = "Hello"
    message = error_of(data)
    assert (
        "/apps/0/screens/0/widgets/1: Additional properties are not allowed ('txt' was unexpected)" in message
    )
    assert "allowed:" in message
    assert "text" in message


def test_wrong_type_and_bad_package() -> None:
    data = tiny_model()
    data["apps"][0]["package"] = "tiny"
    data["apps"][0]["screens"][0]["widgets"][0]["clickable"] = "yes"
    message = error_of(data)
    assert "/apps/0/package:" in message
    assert "/apps/0/screens/0/widgets/0/clickable: 'yes' is not of type 'boolean'" in message


def test_action_needs_exactly_one_key() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][0]["onClick"] = [{"goTo": "next_page", "toast": "hi"}]
    message = error_of(data)
    assert "/apps/0/screens/0/widgets/0/onClick/0" in message
    assert "exactly one of goTo" in message


def test_unknown_start_screen() -> None:
    data = tiny_model()
    data["apps"][0]["startScreen"] = "nope"
    message = error_of(data)
    assert "/apps/0/startScreen: no screen 'nope' in com.example.tiny" in message
    assert "use one of ['home', 'next_page']" in message


def test_go_to_unknown_screen() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][0]["onClick"] = [{"goTo": "elsewhere"}]
    message = error_of(data)
    assert "/apps/0/screens/0/widgets/0/onClick/0/goTo: no screen 'elsewhere'" in message


def test_duplicate_widget_id_points_at_the_second() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][1]["id"] = "go"
    message = error_of(data)
    assert "/apps/0/screens/0/widgets/1/id: widget id 'go' is already used" in message


def test_duplicate_ids_from_a_repeat_without_n() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][1]["widgets"] = [{"id": "row", "text": "Row {n}", "repeat": 3}]
    message = error_of(data)
    assert "/apps/0/screens/1/widgets/0/id" in message
    assert "{n}" in message


def test_open_app_must_name_an_app_of_the_model() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][0]["onClick"] = [{"openApp": "com.example.missing"}]
    message = error_of(data)
    assert "/apps/0/screens/0/widgets/0/onClick/0/openApp: com.example.missing is not an app" in message


def test_appear_after_taps_and_set_text_references() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][1]["appearAfterTaps"] = {"widget": "ghost", "count": 2}
    assert "/apps/0/screens/0/widgets/1/appearAfterTaps/widget: no widget 'ghost'" in error_of(data)
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"][0]["onClick"] = [{"setText": {"widget": "label"}}]
    assert "give exactly one of text and copyFrom" in error_of(data)
    data["apps"][0]["screens"][0]["widgets"][0]["onClick"] = [
        {"setText": {"widget": "done", "screen": "home", "text": "x"}}
    ]
    assert "/apps/0/screens/0/widgets/0/onClick/0/setText: no widget 'done' on screen 'home'" in error_of(
        data
    )


def test_duplicate_package() -> None:
    data = tiny_model()
    data["apps"].append(copy.deepcopy(data["apps"][0]))
    assert "/apps/1/package: package com.example.tiny is listed twice" in error_of(data)


def test_not_an_object_at_all() -> None:
    assert "/: [] is not of type 'object'" in error_of([])


def test_load_reports_unreadable_and_non_json_files(tmp_path) -> None:
    with pytest.raises(AppModelError, match="cannot read app model"):
        AppModel.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schemaVersion": 1,\n "apps": [}', encoding="utf-8")
    with pytest.raises(AppModelError, match="is not JSON: .* line 2"):
        AppModel.load(broken)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"schemaVersion": 2, "apps": []}), encoding="utf-8")
    with pytest.raises(AppModelError, match=r"invalid\.json: app model is not valid:\n  /schemaVersion"):
        AppModel.load(invalid)


def test_extends_sample_apps_adds_and_replaces() -> None:
    data = tiny_model()
    data["extends"] = "sample-apps"
    bank = {
        "package": "com.bank.app",
        "label": "Other bank",
        "startScreen": "s",
        "screens": [
            {
                "id": "s",
                "widgets": [{"id": "pay", "text": "Pay", "onClick": [{"openApp": "com.example.shop"}]}],
            }
        ],
    }
    data["apps"].append(bank)
    model = AppModel.from_dict(data)
    assert "com.example.shop" in model.packages
    assert "com.example.tiny" in model.packages
    assert model.app("com.bank.app").label == "Other bank"


# --- layout ------------------------------------------------------------------------------


def assert_nested_on_screen(node: UiNode) -> None:
    assert node.bounds.on_screen(), node
    for child in node.children:
        b, p = child.bounds, node.bounds
        inside = p.left <= b.left and b.right <= p.right and p.top <= b.top and b.bottom <= p.bottom
        assert inside, (node, child)
        assert_nested_on_screen(child)


def content_of(window: Window) -> UiNode:
    """The window's `android:id/content` frame: where the app's views are."""
    return next(n for n in window.root.walk() if n.resource_id == "android:id/content")


def test_every_sample_screen_lays_out_inside_its_parents_and_on_screen() -> None:
    model = sample_apps()
    for app in model.apps:
        for screen in app.screens.values():
            window = layout_screen(app.package, screen, ScreenView())
            assert window.root.package == app.package
            assert window.root.class_name == "android.widget.FrameLayout"
            assert_nested_on_screen(window.root)
            content = content_of(window)
            tops = list(content.children)
            for upper, lower in zip(tops, tops[1:], strict=False):
                assert upper.bounds.bottom <= lower.bounds.top, (upper, lower)
            for node in content.walk():
                if node is not content:
                    assert CONTENT_TOP <= node.bounds.top
                    assert node.bounds.bottom <= CONTENT_BOTTOM


def test_layout_is_deterministic_and_hidden_widgets_take_no_space() -> None:
    screen = sample_apps().app("com.example.shop").screen("orders")
    first = layout_screen("com.example.shop", screen, ScreenView())
    again = layout_screen("com.example.shop", screen, ScreenView())
    assert first.root == again.root
    hidden = layout_screen("com.example.shop", screen, ScreenView(hidden={"new_order"}))
    refresh_before = next(n for n in first.root.walk() if n.text == "Refresh").bounds
    refresh_after = next(n for n in hidden.root.walk() if n.text == "Refresh").bounds
    assert refresh_after.top < refresh_before.top
    assert not any(n.text == "New order" for n in hidden.root.walk())


def test_list_viewport_leaves_out_items_outside_it() -> None:
    screen = sample_apps().app("com.example.catalogue").screen("list")
    window = layout_screen("com.example.catalogue", screen, ScreenView())
    (scroller,) = window.scrollers
    items = [n for n in window.root.walk() if n.resource_id == "com.example.catalogue:id/item"]
    assert 5 < len(items) < 60
    assert all(
        scroller.bounds.top <= n.bounds.top and n.bounds.bottom <= scroller.bounds.bottom for n in items
    )
    assert scroller.max_scroll == 60 * items[0].bounds.height - scroller.bounds.height
    scrolled = layout_screen(
        "com.example.catalogue", screen, ScreenView(scroll={"items": scroller.max_scroll})
    )
    texts = [n.text for n in scrolled.root.walk() if n.resource_id == "com.example.catalogue:id/item"]
    assert texts[-1] == "Item 60"
    assert "Item 1" not in texts


def test_an_app_window_is_wrapped_as_decorview_wraps_it_on_a_phone() -> None:
    screen = sample_apps().app("com.example.shop").screen("orders")
    window = layout_screen("com.example.shop", screen, ScreenView())
    root = window.root
    assert (root.class_name, root.resource_id, root.bounds) == (
        "android.widget.FrameLayout",
        "",
        Bounds(0, 0, 1080, 2340),
    )
    frame, status, navigation = root.children
    assert (frame.class_name, frame.resource_id, frame.bounds) == (
        "android.widget.LinearLayout",
        "",
        root.bounds,
    )
    (content,) = frame.children
    assert (content.class_name, content.resource_id) == ("android.widget.FrameLayout", "android:id/content")
    assert content.bounds == Bounds(0, CONTENT_TOP, 1080, CONTENT_BOTTOM)
    assert content.children[0].resource_id == "com.example.shop:id/toolbar"
    assert (status.class_name, status.resource_id, status.bounds) == (
        "android.view.View", "android:id/statusBarBackground", Bounds(0, 0, 1080, CONTENT_TOP)
    )  # fmt: skip
    assert (navigation.class_name, navigation.resource_id, navigation.bounds) == (
        "android.view.View", "android:id/navigationBarBackground", Bounds(0, CONTENT_BOTTOM, 1080, 2340)
    )  # fmt: skip
    assert all(n.package == "com.example.shop" for n in root.walk())
    turned = layout_screen("com.example.shop", screen, ScreenView(), (2340, 1080))
    assert content_of(turned).bounds == Bounds(0, CONTENT_TOP, 2340, 1080 - (2340 - CONTENT_BOTTOM))


def test_home_has_one_icon_per_app() -> None:
    model = sample_apps()
    window = layout_home(model.apps)
    assert [n.resource_id for n in window.root.children] == [""]  # no system bar backgrounds
    content = content_of(window)
    assert content.bounds == window.root.bounds
    icons = content.children
    assert [i.text for i in icons] == ["Shop", "Settings", "Bank", "Catalogue"]
    assert all(i.content_desc == i.text and i.clickable and i.package == LAUNCHER_PACKAGE for i in icons)
    assert [t.widget_id for t in window.targets] == model.packages
    assert_nested_on_screen(window.root)


def test_phone_hierarchy_root_is_full_screen() -> None:
    phone = PhoneState(sample_apps(), now=lambda: 0.0)
    root = phone.hierarchy()
    assert root.class_name == "hierarchy"
    assert (root.bounds.width, root.bounds.height) == (1080, 2340)
    assert root.children[0].package == LAUNCHER_PACKAGE


KEYS = ["id", "text", "class", "widgets", "children", "onClick", "goTo", "repeat", "screen", "widget", "apps"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "home", "Button", "com.a.b"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*here, index))
    return found


@settings(max_examples=150, deadline=None)
@given(data=st.data(), replacement=json_values)
def test_any_broken_model_raises_only_app_model_error(data: st.DataObject, replacement: Any) -> None:
    model = tiny_model()
    path = data.draw(st.sampled_from(_paths(model)[1:]))
    parent = model
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    try:
        AppModel.from_dict(model)
    except AppModelError as exc:
        message = str(exc)
    else:
        return
    assert "app model is not valid" in message


def test_the_readme_example_loads() -> None:
    readme = (Path(__file__).resolve().parent.parent / "interpreter" / "appmodel" / "README.md").read_text(
        "utf-8"
    )
    example = readme.split("```json", 1)[1].split("```", 1)[0]
    model = AppModel.from_dict(json.loads(example))
    assert model.app("com.example.tiny").screen("home").widget("row30").text == "Row 30"


def test_horizontal_rows_and_a_nested_list_stay_inside_their_parents() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][1]["widgets"] = [
        {
            "id": "row",
            "orientation": "horizontal",
            "children": [{"id": f"b{i}", "class": "Button", "text": f"B{i}"} for i in range(3)],
        },
        {
            "id": "box",
            "children": [
                {"id": "caption", "text": "Caption"},
                {
                    "id": "inner",
                    "scrollable": True,
                    "children": [{"id": "r{n}", "text": "R{n}", "repeat": 20}],
                },
            ],
        },
        {"id": "tall", "text": "Too tall", "height": 2000},
    ]
    model = AppModel.from_dict(data)
    window = layout_screen(
        "com.example.tiny", model.app("com.example.tiny").screen("next_page"), ScreenView()
    )
    assert_nested_on_screen(window.root)
    row = content_of(window).children[0]
    lefts = [c.bounds.left for c in row.children]
    assert lefts == sorted(lefts)
    assert len({c.bounds.top for c in row.children}) == 1
    inner = next(n for n in window.root.walk() if n.scrollable)
    assert inner.bounds.height == 720
    assert 0 < len(inner.children) < 20
    assert not any(n.text == "Too tall" for n in window.root.walk())  # does not fit: left out


def test_deep_links_and_menus_check_their_references() -> None:
    data = tiny_model()
    data["apps"][0]["deepLinks"] = [{"url": "tiny://next", "screen": "nowhere"}]
    assert "/apps/0/deepLinks/0/screen: no screen 'nowhere' in com.example.tiny" in error_of(data)
    data["apps"][0]["deepLinks"] = [{"url": "no scheme", "screen": "home"}]
    assert "/apps/0/deepLinks/0/url" in error_of(data)
    data = tiny_model()
    data["apps"][0]["screens"][0]["menu"] = [
        {"id": "a", "text": "A", "onClick": [{"goTo": "next_page"}]},
        {"id": "b", "text": "B", "onClick": [{"goTo": "elsewhere"}]},
    ]
    assert "/apps/0/screens/0/menu/1/onClick/0/goTo: no screen 'elsewhere'" in error_of(data)
    data["apps"][0]["screens"][0]["menu"][1] = {"id": "a", "text": "Again"}
    assert "/apps/0/screens/0/menu/1/id: menu item id 'a' is used twice" in error_of(data)
    data["apps"][0]["screens"][0]["menu"][1] = {"id": "b", "text": "B", "onClick": [{"openApp": "com.x.y"}]}
    assert "/apps/0/screens/0/menu/1/onClick/0/openApp: com.x.y is not an app" in error_of(data)


def test_activities_deep_links_and_the_menu_on_a_running_phone() -> None:
    data = tiny_model()
    app = data["apps"][0]
    app["deepLinks"] = [{"url": "tiny://", "screen": "home"}, {"url": "tiny://next", "screen": "next_page"}]
    app["screens"][0]["menu"] = [{"id": "more", "text": "More", "onClick": [{"goTo": "next_page"}]}]
    phone = PhoneState(AppModel.from_dict(data))
    assert phone.start_activity("com.example.tiny", ".NextPageActivity")
    assert phone.current_screen() == "next_page"
    phone.press_key("back")  # the activity was started alone: back leaves the app
    assert phone.foreground_package() == LAUNCHER_PACKAGE
    assert not phone.start_activity("com.example.tiny", ".Nope")
    assert phone.open_url("tiny://start") == "com.example.tiny"
    assert phone.current_screen() == "home"
    assert phone.open_url("tiny://next/7") == "com.example.tiny"  # the longest prefix wins
    assert phone.current_screen() == "next_page"
    assert phone.open_url("tiny://next", package="com.other") is None
    assert phone.open_url("https://example.com") is None
    phone.press_key("back")
    assert phone.current_screen() == "home"  # the screen under the one the link opened
    phone.press_key("menu")
    texts = [n.text for n in phone.hierarchy().walk()]
    assert "More" in texts
    (more,) = [n for n in phone.hierarchy().walk() if n.text == "More"]
    phone.tap(*more.bounds.center)
    assert phone.current_screen() == "next_page"
    assert "More" not in [n.text for n in phone.hierarchy().walk()]


def test_a_tap_checks_and_unchecks_switches_and_checkboxes_as_on_a_phone() -> None:
    data = tiny_model()
    data["apps"][0]["screens"][0]["widgets"] = [
        {"id": "wifi", "class": "Switch", "text": "Use Wi-Fi"},
        {"id": "terms", "class": "CheckBox", "text": "I agree", "checked": True},
        {"id": "fast", "class": "RadioButton", "text": "Fast"},
        {"id": "plain", "text": "Not checkable", "clickable": True},
    ]
    phone = PhoneState(AppModel.from_dict(data), now=lambda: 0.0)
    phone.launch("com.example.tiny")

    def node(text: str) -> UiNode:
        return next(n for n in phone.hierarchy().walk() if n.text == text)

    assert (node("Use Wi-Fi").checkable, node("Use Wi-Fi").checked, node("Use Wi-Fi").clickable) == (
        True,
        False,
        True,
    )
    assert node("I agree").checked is True
    assert node("Not checkable").checkable is False
    for text, after_one, after_two in (
        ("Use Wi-Fi", True, False),
        ("I agree", False, True),
        ("Fast", True, True),
    ):
        phone.tap(*node(text).bounds.center)
        assert node(text).checked is after_one, text
        phone.tap(*node(text).bounds.center)
        assert node(text).checked is after_two, text
    phone.stop("com.example.tiny")
    phone.launch("com.example.tiny")
    assert node("I agree").checked is True  # a new start shows the spec's state again


def test_a_text_field_is_clickable_in_the_hierarchy_as_on_a_phone() -> None:
    phone = PhoneState(sample_apps(), now=lambda: 0.0)
    phone.launch("com.example.shop")
    fields = [n for n in phone.hierarchy().walk() if n.editable]
    assert [n.resource_id for n in fields] == ["com.example.shop:id/user", "com.example.shop:id/password"]
    assert all(n.clickable for n in fields)
    phone.tap(*fields[0].bounds.center)  # a tap still only focuses it
    assert [n.resource_id for n in phone.hierarchy().walk() if n.focused] == ["com.example.shop:id/user"]
