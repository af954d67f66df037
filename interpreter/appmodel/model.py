"""The app model: installed apps, their screens and widgets, and what a click does.

`AppModel.from_dict` checks the JSON against `schema.json` (draft 2020-12), then the
references the schema cannot see (start screens, `goTo` targets, widget ids), and
turns it into immutable specs. Every problem raises `AppModelError` naming the JSON
pointer and what to change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import jsonschema

from interpreter.errors import AppModelError

LAUNCHER_PACKAGE = "com.google.android.apps.nexuslauncher"
LAUNCHER_ACTIVITY = "com.google.android.apps.nexuslauncher.NexusLauncherActivity"
# Packages every phone has besides the model's apps (as an Android 14 image lists them), none with a
# launcher activity: launching one fails, on the simulator as on the virtual device.
SYSTEM_PACKAGES = (
    "android",
    "com.android.settings",
    "com.android.shell",
    "com.android.systemui",
    "com.google.android.inputmethod.latin",
    LAUNCHER_PACKAGE,
)
SAMPLE_APPS_FILE = Path(__file__).resolve().parent.parent / "sample_apps" / "sample_apps.json"

# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoTo:
    screen: str


@dataclass(frozen=True, slots=True)
class OpenApp:
    package: str


@dataclass(frozen=True, slots=True)
class ShowToast:
    text: str


@dataclass(frozen=True, slots=True)
class Back:
    pass


@dataclass(frozen=True, slots=True)
class Home:
    pass


@dataclass(frozen=True, slots=True)
class SetText:
    """Set a widget's text; `screen` None means the clicked widget's screen."""

    widget: str
    screen: str | None = None
    text: str | None = None
    copy_from: str | None = None


@dataclass(frozen=True, slots=True)
class SetVisible:
    widget: str
    visible: bool
    screen: str | None = None


Action: TypeAlias = GoTo | OpenApp | ShowToast | Back | Home | SetText | SetVisible

# --- specs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TapCondition:
    widget: str
    count: int


# Widgets a tap checks and unchecks (Android's CompoundButton and CheckedTextView), by simple class name.
CHECKABLE_CLASSES = frozenset(
    {"Switch", "SwitchCompat", "SwitchMaterial", "MaterialSwitch", "CheckBox", "MaterialCheckBox",
     "AppCompatCheckBox", "RadioButton", "MaterialRadioButton", "AppCompatRadioButton", "ToggleButton",
     "CheckedTextView", "AppCompatCheckedTextView"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WidgetSpec:
    id: str
    class_name: str
    text: str = ""
    resource_id: str = ""
    content_desc: str = ""
    clickable: bool = False
    editable: bool = False
    scrollable: bool = False
    password: bool = False
    checkable: bool = False
    checked: bool = False
    visible: bool = True
    appear_after_ms: int = 0
    appear_after_taps: TapCondition | None = None
    on_click: tuple[Action, ...] = ()
    children: tuple[WidgetSpec, ...] = ()
    height: int | None = None
    horizontal: bool = False

    def walk(self) -> Iterator[WidgetSpec]:
        """This widget and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class MenuItem:
    """An item of a screen's options menu (the menu key opens it)."""

    id: str
    text: str
    on_click: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class DeepLink:
    """A VIEW intent whose URL starts with `url` opens `screen`."""

    url: str
    screen: str


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    id: str
    activity: str
    title: str | None
    widgets: tuple[WidgetSpec, ...]
    by_id: Mapping[str, WidgetSpec] = field(compare=False, repr=False)
    menu: tuple[MenuItem, ...] = ()

    def widget(self, widget_id: str) -> WidgetSpec:
        return self.by_id[widget_id]


@dataclass(frozen=True, slots=True)
class AppSpec:
    package: str
    label: str
    start_screen: str
    launch_activity: str
    screens: Mapping[str, ScreenSpec] = field(compare=False)
    deep_links: tuple[DeepLink, ...] = ()

    def screen(self, screen_id: str) -> ScreenSpec:
        return self.screens[screen_id]

    def screen_of_activity(self, activity: str) -> ScreenSpec | None:
        """The first screen shown by this activity (fully qualified, or `.Name`), or None."""
        qualified = _qualify(self.package, activity)
        return next((s for s in self.screens.values() if s.activity == qualified), None)

    def deep_link(self, url: str) -> DeepLink | None:
        """The deep link with the longest URL prefix of `url`, or None."""
        matches = [link for link in self.deep_links if url.startswith(link.url)]
        return max(matches, key=lambda link: len(link.url), default=None)


class AppModel:
    """A parsed, validated app model. Immutable: share one between many phones."""

    __slots__ = ("_apps",)

    def __init__(self, apps: Mapping[str, AppSpec]) -> None:
        self._apps: dict[str, AppSpec] = dict(apps)

    @classmethod
    def from_dict(cls, data: Any) -> AppModel:
        """Validate `data` (the decoded JSON) and build the model; `AppModelError` says what is wrong."""
        _check_schema(data)
        _check_widget_count(data)
        apps: dict[str, AppSpec] = {}
        if data.get("extends") == "sample-apps":
            apps.update(sample_apps()._apps)
        seen: set[str] = set()
        app_pointers: dict[str, dict[str, dict[str, str]]] = {}
        for index, raw in enumerate(data["apps"]):
            pointer = f"/apps/{index}"
            if raw["package"] in seen:
                raise _error(f"{pointer}/package", f"package {raw['package']} is listed twice", "keep one")
            seen.add(raw["package"])
            apps[raw["package"]], app_pointers[raw["package"]] = _parse_app(raw, pointer)
        installed = set(apps) | seen
        for package, app in apps.items():
            if package in seen:
                _check_open_app_targets(app, installed, app_pointers[package])
        return cls(apps)

    @classmethod
    def load(cls, path: str | Path) -> AppModel:
        """Read and validate an app model JSON file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise AppModelError(f"cannot read app model {path}: {exc.strerror}; check the path") from exc
        except json.JSONDecodeError as exc:
            raise AppModelError(
                f"app model {path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        try:
            return cls.from_dict(data)
        except AppModelError as exc:
            raise AppModelError(f"{path}: {exc}") from exc

    @property
    def packages(self) -> list[str]:
        """The installed packages, in model order."""
        return list(self._apps)

    @property
    def apps(self) -> list[AppSpec]:
        return list(self._apps.values())

    def app(self, package: str) -> AppSpec:
        """The app's spec; KeyError when it is not installed."""
        return self._apps[package]

    def has(self, package: str) -> bool:
        return package in self._apps

    def __repr__(self) -> str:
        return f"AppModel(packages={self.packages!r})"


@cache
def sample_apps() -> AppModel:
    """All shipped sample apps (shop, settings, bank, catalogue) in one model."""
    return AppModel.load(SAMPLE_APPS_FILE)


def sample_apps_path() -> Path:
    """The shipped sample apps JSON, usable as `--apps FILE`."""
    return SAMPLE_APPS_FILE


# --- schema ------------------------------------------------------------------------------


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((Path(__file__).parent / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def app_model_schema() -> dict[str, Any]:
    """The app model's JSON Schema (draft 2020-12)."""
    schema = _validator().schema
    assert isinstance(schema, dict)
    return dict(schema)


def pointer_of(path: Any) -> str:
    """A JSON pointer (RFC 6901) for a jsonschema error path."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def _check_schema(data: Any) -> None:
    errors = sorted(
        _validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if not errors:
        return
    lines = [f"{pointer_of(e.absolute_path)}: {e.message}; {_hint(e)}" for e in errors[:10]]
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    raise AppModelError("app model is not valid:\n  " + "\n  ".join(lines) + more)


def _hint(error: jsonschema.ValidationError) -> str:
    keyword = error.validator
    if keyword == "required":
        return "add the missing property"
    if keyword == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        return f"remove it or fix its spelling (allowed: {', '.join(allowed)})"
    if keyword in ("minProperties", "maxProperties"):
        return "an action has exactly one of goTo, openApp, toast, back, home, setText, show, hide"
    if keyword == "type":
        return f"use a value of type {error.validator_value}"
    if keyword == "pattern":
        return "use letters, digits and _ (packages look like com.example.app)"
    if keyword in ("enum", "const"):
        return (
            f"use one of {error.validator_value!r}" if keyword == "enum" else f"use {error.validator_value!r}"
        )
    if keyword == "oneOf":
        return 'give a widget id, or {"widget": id, "screen": id}'
    return "see the app model schema"


# The most widgets a model may hold once `repeat`s are expanded: a recorded real app has a few
# hundred a screen. Each costs memory and layout time at every step: 10 KB of JSON (200 widgets
# repeated 1,000 times) took 1.4 s to load, and a 4 MB request could have asked for 80 million.
MAX_WIDGETS = 100_000


def _check_widget_count(data: dict[str, Any]) -> None:
    """`AppModelError` at the screen where the expanded widgets pass `MAX_WIDGETS` (counted, none made)."""
    total = 0
    for app_index, app in enumerate(data["apps"]):
        for screen_index, screen in enumerate(app["screens"]):
            total += sum(_expanded(widget) for widget in screen.get("widgets", []))
            if total > MAX_WIDGETS:
                raise _error(
                    f"/apps/{app_index}/screens/{screen_index}",
                    f"the model has more than {MAX_WIDGETS:,} widgets by here, `repeat`s counted",
                    "model fewer widgets (a list needs only the rows a run scrolls through)",
                )


def _expanded(widget: dict[str, Any]) -> int:
    """How many widgets `widget` makes: its `repeat` times itself and its children's."""
    return int(widget.get("repeat") or 1) * (
        1 + sum(_expanded(child) for child in widget.get("children", []))
    )


def _error(pointer: str, problem: str, fix: str) -> AppModelError:
    return AppModelError(f"app model is not valid:\n  {pointer}: {problem}; {fix}")


# --- parsing -----------------------------------------------------------------------------


def _parse_app(raw: dict[str, Any], pointer: str) -> tuple[AppSpec, dict[str, dict[str, str]]]:
    """The app's spec and, per screen and widget id, the JSON pointer of the widget."""
    package: str = raw["package"]
    screens: dict[str, ScreenSpec] = {}
    pointers: dict[str, dict[str, str]] = {}
    for index, raw_screen in enumerate(raw["screens"]):
        screen_pointer = f"{pointer}/screens/{index}"
        if raw_screen["id"] in screens:
            raise _error(
                f"{screen_pointer}/id", f"screen id {raw_screen['id']!r} is used twice", "rename one"
            )
        spec, pointers[raw_screen["id"]] = _parse_screen(package, raw_screen, screen_pointer)
        screens[spec.id] = spec
    start = raw["startScreen"]
    if start not in screens:
        raise _error(
            f"{pointer}/startScreen", f"no screen {start!r} in {package}", f"use one of {sorted(screens)}"
        )
    for screen_id, screen in screens.items():
        _check_references(screens, screen, pointers[screen_id])
    links: list[DeepLink] = []
    for index, raw_link in enumerate(raw.get("deepLinks", [])):
        if raw_link["screen"] not in screens:
            raise _error(
                f"{pointer}/deepLinks/{index}/screen",
                f"no screen {raw_link['screen']!r} in {package}",
                f"use one of {sorted(screens)}",
            )
        links.append(DeepLink(raw_link["url"], raw_link["screen"]))
    launch = raw.get("launchActivity")
    launch_activity = _qualify(package, launch) if launch else screens[start].activity
    app = AppSpec(package, raw["label"], start, launch_activity, MappingProxyType(screens), tuple(links))
    return app, pointers


def _qualify(package: str, activity: str) -> str:
    return package + activity if activity.startswith(".") else activity


def _default_activity(package: str, screen_id: str) -> str:
    words = re.split(r"[_-]+", screen_id)
    return f"{package}.{''.join(w[:1].upper() + w[1:] for w in words)}Activity"


def _parse_screen(package: str, raw: dict[str, Any], pointer: str) -> tuple[ScreenSpec, dict[str, str]]:
    """The screen's spec and, per widget id, the JSON pointer of the widget that made it."""
    widgets: list[WidgetSpec] = []
    pointers: dict[str, str] = {}
    for index, raw_widget in enumerate(raw["widgets"]):
        widgets.extend(_parse_widgets(raw_widget, f"{pointer}/widgets/{index}", pointers))
    by_id = MappingProxyType({widget.id: widget for top in widgets for widget in top.walk()})
    activity = raw.get("activity")
    menu: list[MenuItem] = []
    pointers["#menu"] = f"{pointer}/menu"  # '#' is never in a widget id
    for index, raw_item in enumerate(raw.get("menu", [])):
        if any(item.id == raw_item["id"] for item in menu):
            raise _error(
                f"{pointer}/menu/{index}/id", f"menu item id {raw_item['id']!r} is used twice", "rename one"
            )
        actions = tuple(_parse_action(a) for a in raw_item.get("onClick", []))
        menu.append(MenuItem(raw_item["id"], raw_item["text"], actions))
    spec = ScreenSpec(
        id=raw["id"],
        activity=_qualify(package, activity) if activity else _default_activity(package, raw["id"]),
        title=raw.get("title"),
        widgets=tuple(widgets),
        by_id=by_id,
        menu=tuple(menu),
    )
    return spec, pointers


def _substitute(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, list):
        return [_substitute(v, n) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, n) for k, v in value.items()}
    return value


def _parse_widgets(raw: dict[str, Any], pointer: str, pointers: dict[str, str]) -> list[WidgetSpec]:
    """One widget, or `repeat` copies of it with {n} replaced."""
    count = raw.get("repeat")
    if count is None:
        return [_parse_widget(raw, pointer, pointers)]
    return [_parse_widget(_substitute(raw, n), pointer, pointers) for n in range(1, count + 1)]


def _class_name(raw: dict[str, Any]) -> str:
    name = raw.get("class")
    if name is None:
        if raw.get("scrollable"):
            return "android.widget.ScrollView"
        return "android.widget.LinearLayout" if raw.get("children") else "android.widget.TextView"
    return name if "." in name else f"android.widget.{name}"


def _parse_widget(raw: dict[str, Any], pointer: str, pointers: dict[str, str]) -> WidgetSpec:
    class_name = _class_name(raw)
    simple = class_name.rsplit(".", 1)[-1]
    on_click = tuple(_parse_action(a) for a in raw.get("onClick", []))
    if raw["id"] in pointers:
        raise _error(
            f"{pointer}/id",
            f"widget id {raw['id']!r} is already used on this screen at {pointers[raw['id']]}",
            "give each widget of a screen its own id (put {n} in the id of a repeated widget)",
        )
    pointers[raw["id"]] = pointer
    children: list[WidgetSpec] = []
    for index, raw_child in enumerate(raw.get("children", [])):
        children.extend(_parse_widgets(raw_child, f"{pointer}/children/{index}", pointers))
    taps = raw.get("appearAfterTaps")
    checkable = raw.get("checkable", simple in CHECKABLE_CLASSES)
    return WidgetSpec(
        id=raw["id"],
        class_name=class_name,
        text=raw.get("text", ""),
        resource_id=raw.get("resourceId", ""),
        content_desc=raw.get("contentDesc", ""),
        clickable=raw.get("clickable", bool(on_click) or checkable or simple in ("Button", "ImageButton")),
        editable=raw.get("editable", simple.endswith("EditText")),
        scrollable=raw.get("scrollable", False),
        password=raw.get("password", False),
        checkable=checkable,
        checked=checkable and raw.get("checked", False),
        visible=raw.get("visible", True),
        appear_after_ms=raw.get("appearAfterMs", 0),
        appear_after_taps=TapCondition(taps["widget"], taps["count"]) if taps else None,
        on_click=on_click,
        children=tuple(children),
        height=raw.get("height"),
        horizontal=raw.get("orientation") == "horizontal",
    )


def _target(raw: Any) -> tuple[str, str | None]:
    if isinstance(raw, str):
        return raw, None
    return raw["widget"], raw.get("screen")


def _parse_action(raw: dict[str, Any]) -> Action:
    ((kind, value),) = raw.items()
    if kind == "goTo":
        return GoTo(value)
    if kind == "openApp":
        return OpenApp(value)
    if kind == "toast":
        return ShowToast(value)
    if kind == "back":
        return Back()
    if kind == "home":
        return Home()
    if kind == "setText":
        return SetText(value["widget"], value.get("screen"), value.get("text"), value.get("copyFrom"))
    widget, screen = _target(value)
    return SetVisible(widget, kind == "show", screen)


# --- references the schema cannot check --------------------------------------------------


def _check_references(
    screens: Mapping[str, ScreenSpec], screen: ScreenSpec, pointers: dict[str, str]
) -> None:
    for widget in (w for top in screen.widgets for w in top.walk()):
        where = pointers[widget.id]
        taps = widget.appear_after_taps
        if taps is not None and taps.widget not in screen.by_id:
            raise _error(
                f"{where}/appearAfterTaps/widget",
                f"no widget {taps.widget!r} on screen {screen.id!r}",
                "name a widget of the same screen",
            )
        for index, action in enumerate(widget.on_click):
            _check_action(screens, screen, action, f"{where}/onClick/{index}")
    for item_index, item in enumerate(screen.menu):
        for index, action in enumerate(item.on_click):
            _check_action(screens, screen, action, f"{pointers['#menu']}/{item_index}/onClick/{index}")


def _check_action(
    screens: Mapping[str, ScreenSpec], screen: ScreenSpec, action: Action, pointer: str
) -> None:
    if isinstance(action, GoTo) and action.screen not in screens:
        raise _error(
            f"{pointer}/goTo", f"no screen {action.screen!r} in this app", f"use one of {sorted(screens)}"
        )
    if isinstance(action, SetText | SetVisible):
        key = "setText" if isinstance(action, SetText) else ("show" if action.visible else "hide")
        target = screens.get(action.screen) if action.screen is not None else screen
        if target is None:
            raise _error(
                f"{pointer}/{key}/screen", f"no screen {action.screen!r} in this app", "fix the name"
            )
        if action.widget not in target.by_id:
            raise _error(
                f"{pointer}/{key}",
                f"no widget {action.widget!r} on screen {target.id!r}",
                "fix the widget id",
            )
        if isinstance(action, SetText):
            if (action.text is None) == (action.copy_from is None):
                raise _error(f"{pointer}/setText", "give exactly one of text and copyFrom", "drop one")
            if action.copy_from is not None and action.copy_from not in screen.by_id:
                raise _error(
                    f"{pointer}/setText/copyFrom",
                    f"no widget {action.copy_from!r} on screen {screen.id!r}",
                    "copy from a widget of the clicked widget's screen",
                )


def _check_open_app_targets(app: AppSpec, installed: set[str], pointers: dict[str, dict[str, str]]) -> None:
    for screen in app.screens.values():
        for widget in (w for top in screen.widgets for w in top.walk()):
            for index, action in enumerate(widget.on_click):
                if isinstance(action, OpenApp) and action.package not in installed:
                    raise _error(
                        f"{pointers[screen.id][widget.id]}/onClick/{index}/openApp",
                        f"{action.package} is not an app of this model",
                        "add the app or fix the package name",
                    )
        for item_index, item in enumerate(screen.menu):
            for index, action in enumerate(item.on_click):
                if isinstance(action, OpenApp) and action.package not in installed:
                    raise _error(
                        f"{pointers[screen.id]['#menu']}/{item_index}/onClick/{index}/openApp",
                        f"{action.package} is not an app of this model",
                        "add the app or fix the package name",
                    )
