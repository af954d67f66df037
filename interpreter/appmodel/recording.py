"""Recording an app model from a real phone: the screens a person visits in the screen inspector,
their widgets read from the window hierarchy, and what each recorded click did.

`record_screen` adds (or refreshes) the screen a hierarchy shows; `record_click` adds the screens
before and after a click and gives the clicked widget the `onClick` that leads from one to the
other (`goTo` a screen of the same app, `openApp` another). The model stays a plain app-model
document (docs/app-model.md), so the simulator previews workflows on the recorded app and a
person may edit it like any other.

A screen is known by its activity (`.LoginActivity` and `com.x.LoginActivity` are one); without
one, by the ids of its widgets. A widget is a node that shows something (text, resource id,
content description) or can be clicked, typed into or scrolled; layout containers that show
nothing are kept only to hold several such widgets. Only the views of the app's
`android:id/content` frame are read: DecorView's layers around it and the system bars' backgrounds
are not the app's. The app's toolbar (`<package>:id/toolbar`) becomes the screen's title, as the
layout draws one.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from interpreter.appmodel.model import CHECKABLE_CLASSES
from interpreter.hierarchy import UiNode

Model = dict[str, Any]

_DEFAULT_CLICKABLE = ("Button", "ImageButton")
_TOAST_ID = "android:id/message"
_CONTENT_ID = "android:id/content"
_BAR_BACKGROUND_IDS = frozenset({"android:id/statusBarBackground", "android:id/navigationBarBackground"})


@dataclass(frozen=True, slots=True)
class Foreground:
    """The app in front and its activity (None when the phone did not say)."""

    package: str
    activity: str | None = None

    def qualified_activity(self) -> str | None:
        if not self.activity:
            return None
        if self.activity.startswith("."):
            return self.package + self.activity
        return self.activity


@dataclass(frozen=True, slots=True)
class RecordedClick:
    """What a recorded click did: the screens before and after, and the widget it hit (if any)."""

    package: str
    before: str
    after: str
    after_package: str
    widget: str | None
    action: dict[str, Any] | None


def empty_model() -> Model:
    return {"schemaVersion": 1, "apps": []}


def _snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return text or "screen"


def _screen_id_for(foreground: Foreground) -> str | None:
    activity = foreground.qualified_activity()
    if not activity:
        return None
    name = activity.rsplit(".", 1)[-1]
    if name.endswith("Activity") and len(name) > len("Activity"):
        name = name[: -len("Activity")]
    return _snake(name)


class _WidgetReader:
    """Turns one screen's nodes into app-model widgets, remembering which node became which widget."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.title: str | None = None
        self.ids: set[str] = set()
        self.widget_of: dict[int, str] = {}

    def _free_id(self, node: UiNode) -> str:
        base = ""
        if node.resource_id and ":id/" in node.resource_id:
            base = node.resource_id.split(":id/", 1)[1]
        if not base and node.text.strip() and not node.password:
            base = node.text.strip()
        if not base and node.content_desc.strip():
            base = node.content_desc.strip()
        if not base:
            base = node.class_name.rsplit(".", 1)[-1]
        base = _snake(base)[:40] or "widget"
        if base[0].isdigit():
            base = f"w_{base}"
        found, n = base, 2
        while found in self.ids:
            found, n = f"{base}_{n}", n + 1
        self.ids.add(found)
        return found

    def read(self, node: UiNode) -> dict[str, Any] | None:
        if node.resource_id == f"{self.package}:id/toolbar":
            texts = [n.text.strip() for n in node.walk() if n.text.strip()]
            if texts and self.title is None:
                self.title = texts[0]
                return None
        if node.resource_id == _TOAST_ID:
            return None  # a toast is what a click showed, not part of the screen
        children = [w for w in (self.read(child) for child in node.children) if w is not None]
        shows = bool(node.text.strip() or node.resource_id or node.content_desc.strip())
        acts = node.clickable or node.editable or node.scrollable
        if not shows and not acts:
            if not children:
                return None
            if len(children) == 1:
                return children[0]
        widget: dict[str, Any] = {"id": self._free_id(node), "class": node.class_name}
        if node.text and not node.password:
            widget["text"] = node.text
        if node.resource_id:
            widget["resourceId"] = node.resource_id
        if node.content_desc:
            widget["contentDesc"] = node.content_desc
        simple = node.class_name.rsplit(".", 1)[-1]
        checkable_class = simple in CHECKABLE_CLASSES
        if node.clickable or simple in _DEFAULT_CLICKABLE or checkable_class:
            widget["clickable"] = node.clickable
        if node.checkable != checkable_class:
            widget["checkable"] = node.checkable
        if node.checkable and node.checked:
            widget["checked"] = True
        if node.password:
            widget["password"] = True
        if node.scrollable:
            widget["scrollable"] = True
        if children:
            widget["children"] = children
        self.widget_of[id(node)] = widget["id"]
        return widget


def _app_windows(root: UiNode, package: str) -> list[UiNode]:
    return [window for window in root.children if window.package == package]


def _app_views(window: UiNode) -> list[UiNode]:
    """The app's own views in its window: what DecorView's `android:id/content` frame holds (a window
    without one, such as a popup, is all the app's), without the system bars' backgrounds."""
    stack = [window]
    while stack:
        node = stack.pop(0)
        if node.resource_id == _CONTENT_ID:
            return node.children
        stack.extend(node.children)
    return [child for child in window.children if child.resource_id not in _BAR_BACKGROUND_IDS]


def read_screen(root: UiNode, foreground: Foreground) -> tuple[dict[str, Any], dict[int, str]]:
    """The screen the hierarchy shows (app-model JSON, without its id) and node → widget id."""
    reader = _WidgetReader(foreground.package)
    widgets: list[dict[str, Any]] = []
    for window in _app_windows(root, foreground.package):
        for child in _app_views(window):
            widget = reader.read(child)
            if widget is not None:
                widgets.append(widget)
    screen: dict[str, Any] = {"widgets": widgets}
    activity = foreground.qualified_activity()
    if activity:
        screen["activity"] = activity
    if reader.title is not None:
        screen["title"] = reader.title
    return screen, reader.widget_of


def _widget_ids(widgets: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for widget in widgets:
        found.add(widget["id"])
        found |= _widget_ids(widget.get("children", []))
    return found


def _widgets_by_id(widgets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for widget in widgets:
        found[widget["id"]] = widget
        found.update(_widgets_by_id(widget.get("children", [])))
    return found


def _app(model: Model, package: str) -> dict[str, Any]:
    for app in model["apps"]:
        if app["package"] == package:
            return app  # type: ignore[no-any-return]
    label = package.rsplit(".", 1)[-1].replace("_", " ").title()
    app = {"package": package, "label": label, "startScreen": "", "screens": []}
    model["apps"].append(app)
    return app


def _place_screen(app: dict[str, Any], screen: dict[str, Any], foreground: Foreground) -> str:
    """Add the screen to the app, or refresh the one it is (keeping the clicks recorded on it)."""
    wanted = _screen_id_for(foreground)
    existing = None
    for known in app["screens"]:
        if wanted is not None and known.get("activity") == screen.get("activity"):
            existing = known
            break
        if wanted is None and _widget_ids(known["widgets"]) == _widget_ids(screen["widgets"]):
            existing = known
            break
    if existing is not None:
        old = _widgets_by_id(existing["widgets"])
        for widget_id, widget in _widgets_by_id(screen["widgets"]).items():
            if widget_id in old and "onClick" in old[widget_id]:
                widget["onClick"] = old[widget_id]["onClick"]
                widget.setdefault("clickable", True)
        existing["widgets"] = screen["widgets"]
        if "title" in screen:
            existing["title"] = screen["title"]
        return str(existing["id"])
    taken = {s["id"] for s in app["screens"]}
    base = wanted or f"screen_{len(app['screens']) + 1}"
    screen_id, n = base, 2
    while screen_id in taken:
        screen_id, n = f"{base}_{n}", n + 1
    app["screens"].append({"id": screen_id, **screen})
    if not app["startScreen"]:
        app["startScreen"] = screen_id
    return screen_id


def record_screen(model: Model, root: UiNode, foreground: Foreground) -> tuple[Model, str]:
    """The model with the screen `root` shows added or refreshed (a new model), and its id."""
    updated = copy.deepcopy(model)
    screen, _ = read_screen(root, foreground)
    return updated, _place_screen(_app(updated, foreground.package), screen, foreground)


def _hit(root: UiNode, package: str, x: int, y: int, widget_of: dict[int, str]) -> str | None:
    """The widget a finger at (x, y) hit: the smallest app node there, or its nearest recorded ancestor
    that can be clicked (as Android hands a touch to the clickable view around it)."""
    best: list[UiNode] | None = None
    for window in _app_windows(root, package):
        stack: list[tuple[UiNode, list[UiNode]]] = [(window, [window])]
        while stack:
            node, path = stack.pop()
            if node.bounds.contains(x, y):
                if best is None or len(path) > len(best):
                    best = path
                stack.extend((child, [*path, child]) for child in node.children)
    if best is None:
        return None
    recorded = [node for node in reversed(best) if id(node) in widget_of]
    clickable = next((node for node in recorded if node.clickable or node.editable), None)
    chosen = clickable or (recorded[0] if recorded else None)
    return widget_of[id(chosen)] if chosen is not None else None


def record_click(
    model: Model,
    before: UiNode,
    before_foreground: Foreground,
    point: tuple[int, int],
    after: UiNode,
    after_foreground: Foreground,
) -> tuple[Model, RecordedClick]:
    """The model with the screens before and after a click at `point`, and the clicked widget's
    `onClick` leading from one to the other (a new model), and what was recorded."""
    updated = copy.deepcopy(model)
    app = _app(updated, before_foreground.package)
    screen, widget_of = read_screen(before, before_foreground)
    widget_id = _hit(before, before_foreground.package, point[0], point[1], widget_of)
    before_id = _place_screen(app, screen, before_foreground)
    after_screen, _ = read_screen(after, after_foreground)
    after_id = _place_screen(_app(updated, after_foreground.package), after_screen, after_foreground)
    action: dict[str, Any] | None = None
    if after_foreground.package != before_foreground.package:
        action = {"openApp": after_foreground.package}
    elif after_id != before_id:
        action = {"goTo": after_id}
    if widget_id is not None:
        placed = next(s for s in app["screens"] if s["id"] == before_id)
        widget = _widgets_by_id(placed["widgets"])[widget_id]
        if action is not None:
            widget["onClick"] = [action]
            widget["clickable"] = True
    return updated, RecordedClick(
        package=before_foreground.package,
        before=before_id,
        after=after_id,
        after_package=after_foreground.package,
        widget=widget_id,
        action=action,
    )
