"""Recording an app model from what a phone shows: the screens visited, their widgets, and what each
click did. A path recorded on the sample shop (login → orders → new order) previews on the
simulator exactly as the shop itself runs it: the same trace."""

from __future__ import annotations

from typing import Any

from interpreter.appmodel import AppModel, sample_apps
from interpreter.appmodel.phone import PhoneState
from interpreter.appmodel.recording import Foreground, empty_model, record_click, record_screen
from interpreter.clock import VirtualClock
from interpreter.engine import run_workflow
from interpreter.hierarchy import from_android_xml, to_android_xml
from interpreter.matcher import Selector, find
from interpreter.simulator import SimulatedDevice


def _seen(phone: PhoneState) -> tuple[Any, Foreground]:
    """The screen as a bridge reads it (through the XML) and the app in front (short activity)."""
    package = phone.foreground_package()
    activity = phone.foreground_activity().removeprefix(package)
    return from_android_xml(to_android_xml(phone.hierarchy())), Foreground(package, activity)


def _click(phone: PhoneState, model: dict[str, Any], resource_id: str) -> dict[str, Any]:
    before, before_fg = _seen(phone)
    node = find(before, Selector(resource_id=resource_id))
    assert node is not None
    x, y = node.bounds.center
    phone.tap(x, y)
    after, after_fg = _seen(phone)
    updated, _click_info = record_click(model, before, before_fg, (x, y), after, after_fg)
    return updated


WORKFLOW: dict[str, Any] = {
    "schemaVersion": 1,
    "name": "Recorded path",
    "start": "open",
    "nodes": [
        {
            "id": "open",
            "kind": "action.launchApp",
            "params": {"package": "com.example.shop", "stopFirst": True},
            "next": "sign_in",
        },
        {
            "id": "sign_in",
            "kind": "action.tap",
            "params": {"selector": {"resourceId": "com.example.shop:id/sign_in"}},
            "next": "new",
        },
        {
            "id": "new",
            "kind": "action.tap",
            "params": {"selector": {"resourceId": "com.example.shop:id/new_order"}},
            "next": "wait",
        },
        {"id": "wait", "kind": "action.waitForText", "params": {"text": "Save"}, "next": "read"},
        {
            "id": "read",
            "kind": "action.readText",
            "params": {"selector": {"resourceId": "com.example.shop:id/cancel"}},
        },
    ],
}


def _trace(model: AppModel) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    clock = VirtualClock()
    result = run_workflow(WORKFLOW, SimulatedDevice(model, clock), clock=clock)
    return [(e.node_id, e.outcome.value, e.message, e.output) for e in result.trace]


def test_a_three_screen_path_recorded_on_the_shop_simulates_as_the_shop_runs() -> None:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    root, foreground = _seen(phone)
    model, first = record_screen(empty_model(), root, foreground)
    assert first == "login"
    model = _click(phone, model, "com.example.shop:id/sign_in")
    model = _click(phone, model, "com.example.shop:id/new_order")

    recorded = AppModel.from_dict(model)  # a valid app model
    shop = model["apps"][0]
    assert shop["package"] == "com.example.shop"
    assert shop["startScreen"] == "login"
    assert [s["id"] for s in shop["screens"]] == ["login", "orders", "new_order"]
    assert [s["title"] for s in shop["screens"]] == ["Shop", "Orders", "New order"]
    login = {w["id"]: w for w in shop["screens"][0]["widgets"]}
    assert login["sign_in"]["onClick"] == [{"goTo": "orders"}]
    assert login["password"]["password"] is True
    assert "text" not in login["password"]  # what a password field shows is not its text

    expected = _trace(sample_apps())
    assert [outcome for _node, outcome, _message, _output in expected] == ["ok"] * 5
    assert _trace(recorded) == expected


def test_a_screen_seen_again_keeps_its_recorded_clicks() -> None:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    model = _click(phone, empty_model(), "com.example.shop:id/sign_in")
    phone.stop("com.example.shop")
    phone.launch("com.example.shop")  # the login screen again
    root, foreground = _seen(phone)
    model, again = record_screen(model, root, foreground)
    assert again == "login"
    model = _click(phone, model, "com.example.shop:id/sign_in")
    model = _click(phone, model, "com.example.shop:id/new_order")
    screens = model["apps"][0]["screens"]
    assert [s["id"] for s in screens] == ["login", "orders", "new_order"]
    login = {w["id"]: w for w in screens[0]["widgets"]}
    assert login["sign_in"]["onClick"] == [{"goTo": "orders"}]
    orders = {w["id"]: w for w in screens[1]["widgets"]}
    assert orders["new_order"]["onClick"] == [{"goTo": "new_order"}]


def test_a_click_into_another_app_opens_it() -> None:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    model = _click(phone, empty_model(), "com.example.shop:id/sign_in")
    model = _click(phone, model, "com.example.shop:id/pay")
    packages = [app["package"] for app in model["apps"]]
    assert packages == ["com.example.shop", "com.bank.app"]
    orders = next(s for s in model["apps"][0]["screens"] if s["id"] == "orders")
    pay = next(w for w in orders["widgets"] if w["id"] == "pay")
    assert pay["onClick"] == [{"openApp": "com.bank.app"}]
    AppModel.from_dict(model)


def _node(class_name: str, bounds: str, resource_id: str = "", text: str = "", children: str = "") -> str:
    head = (
        f'<node index="0" text="{text}" resource-id="{resource_id}" class="{class_name}" package="com.x.app" '
        f'content-desc="" clickable="false" enabled="true" bounds="{bounds}"'
    )
    return f"{head}>{children}</node>" if children else f"{head} />"


def test_only_the_apps_views_in_its_content_frame_are_recorded() -> None:
    # A phone's window as an AppCompat activity has it: DecorView's layers around
    # `android:id/content` (here AppCompat's own content frame) and the system bars' backgrounds.
    full = "[0,0][1080,2340]"
    widgets = _node("android.widget.TextView", "[42,108][1038,228]", "com.x.app:id/hello", "Hello") + _node(
        "android.widget.Button", "[42,252][1038,396]", "com.x.app:id/go", "Go"
    )
    content = _node("android.widget.FrameLayout", "[0,84][1080,2214]", "android:id/content", children=widgets)
    action_bar_root = _node(
        "android.widget.LinearLayout", "[0,84][1080,2214]", "com.x.app:id/action_bar_root", children=content
    )
    decor = _node(
        "android.widget.FrameLayout",
        full,
        children=_node(
            "android.widget.LinearLayout",
            full,
            children=_node("android.widget.FrameLayout", "[0,84][1080,2214]", children=action_bar_root),
        )
        + _node("android.view.View", "[0,0][1080,84]", "android:id/statusBarBackground")
        + _node("android.view.View", "[0,2214][1080,2340]", "android:id/navigationBarBackground"),
    )
    root = from_android_xml(f"<?xml version='1.0' ?><hierarchy rotation=\"0\">{decor}</hierarchy>")
    model, screen_id = record_screen(empty_model(), root, Foreground("com.x.app", ".MainActivity"))
    (screen,) = model["apps"][0]["screens"]
    assert [w.get("resourceId") for w in screen["widgets"]] == ["com.x.app:id/hello", "com.x.app:id/go"]
    AppModel.from_dict(model)


def test_a_checked_switch_is_recorded_checked() -> None:
    phone = PhoneState(sample_apps())
    phone.launch("com.android.settings")
    root, _ = _seen(phone)
    wifi = find(root, Selector(text="Wi-Fi"))
    assert wifi is not None
    phone.tap(*wifi.bounds.center)
    switch = find(_seen(phone)[0], Selector(resource_id="android:id/switch_widget"))
    assert switch is not None
    phone.tap(*switch.bounds.center)
    root, foreground = _seen(phone)
    model, screen_id = record_screen(empty_model(), root, foreground)
    screen = next(s for s in model["apps"][0]["screens"] if s["id"] == screen_id)
    recorded = next(w for w in screen["widgets"] if w.get("resourceId") == "android:id/switch_widget")
    assert recorded["class"] == "android.widget.Switch"
    assert recorded["checked"] is True
    assert "checkable" not in recorded  # a Switch is by default
    reloaded = AppModel.from_dict(model).app("com.android.settings").screen(screen_id).widget(recorded["id"])
    assert (reloaded.checkable, reloaded.checked) == (True, True)
