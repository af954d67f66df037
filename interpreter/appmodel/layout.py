"""Where every widget sits on the 1080x2340 screen (2340x1080 when the phone is turned: `size`).

The layout is deterministic and simple, so that the simulator and the emulator (which
renders the same tree) agree to the pixel:

- a status bar (0..84) and a navigation bar (2214..2340) are reserved and drawn by
  nobody; an app's window is wrapped as DecorView wraps it on a phone: a full-screen
  `android.widget.FrameLayout` (no id) holding a full-screen `android.widget.LinearLayout`
  whose `android.widget.FrameLayout` `android:id/content` (between the bars) holds the
  app's views, then the `android.view.View`s `android:id/statusBarBackground` and
  `android:id/navigationBarBackground` over the bars (`decor_window`; the launcher's
  window has no bar backgrounds and its content is full-screen);
- a screen with a title gets a toolbar (`android.view.ViewGroup`, 168 px) holding the
  title as a TextView;
- top-level widgets stack vertically with a 42 px side margin and 24 px gaps; each has
  a height by class (or its own `height`); a container is as tall as its children plus
  24 px padding; `orientation: horizontal` splits the width evenly;
- a scrollable widget without a `height` fills the space its later siblings leave.
  Its children stack without gaps or padding, shifted up by the scroll offset; a child
  cut by the viewport's edge is in the tree with the bounds of what shows of it (as
  uiautomator dumps visible bounds), its own children outside the viewport left out, and
  children wholly outside the viewport are not in the tree; a list whose children all fit
  is `scrollable` false (Android reports only lists that can scroll);
- a widget that does not fit inside its parent (or below the toolbar) is left out.

Hidden widgets take no space (Android's `GONE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from interpreter.appmodel.model import LAUNCHER_PACKAGE, AppSpec, MenuItem, ScreenSpec, WidgetSpec
from interpreter.hierarchy import SCREEN_HEIGHT, SCREEN_WIDTH, Bounds, UiNode

STATUS_BAR_HEIGHT = 84
NAV_BAR_HEIGHT = 126
CONTENT_TOP = STATUS_BAR_HEIGHT
CONTENT_BOTTOM = SCREEN_HEIGHT - NAV_BAR_HEIGHT  # in portrait
Size = tuple[int, int]  # a display's (width, height): portrait, or landscape when rotated
PORTRAIT: Size = (SCREEN_WIDTH, SCREEN_HEIGHT)
TOOLBAR_HEIGHT = 168
MARGIN = 42
GAP = 24
PADDING = 24
MIN_LIST_HEIGHT = 480
NESTED_LIST_HEIGHT = 720
TOAST_TOP = 1900
TOAST_HEIGHT = 132
HOME_COLUMNS = 4
HOME_CELL_HEIGHT = 300
WINDOW_CLASS = "android.widget.FrameLayout"
CONTENT_ID = "android:id/content"
STATUS_BAR_BACKGROUND_ID = "android:id/statusBarBackground"
NAV_BAR_BACKGROUND_ID = "android:id/navigationBarBackground"
# The ids of DecorView's own views in an app's window (not the app's widgets).
DECOR_IDS = frozenset({CONTENT_ID, STATUS_BAR_BACKGROUND_ID, NAV_BAR_BACKGROUND_ID})

_HEIGHT_BY_CLASS = {
    "EditText": 154,
    "Button": 144,
    "ImageButton": 144,
    "TextView": 120,
    "CheckBox": 120,
    "Switch": 120,
    "ImageView": 240,
}
_DEFAULT_HEIGHT = 144


@dataclass(frozen=True, slots=True)
class ScreenView:
    """What the running phone knows about a screen that the model does not."""

    texts: Mapping[str, str] = field(default_factory=dict)  # current text, when it differs from the spec
    hidden: AbstractSet[str] = frozenset()  # widget ids not shown now
    scroll: Mapping[str, int] = field(default_factory=dict)  # scroll offset (px) per scrollable widget
    focused: str | None = None
    checked: Mapping[str, bool] = field(default_factory=dict)  # checked state, when it differs from the spec


@dataclass(frozen=True, slots=True)
class Target:
    """A clickable or editable node: a tap inside `bounds` reaches widget `widget_id`."""

    bounds: Bounds
    widget_id: str
    clickable: bool
    editable: bool


@dataclass(frozen=True, slots=True)
class Scroller:
    bounds: Bounds
    widget_id: str
    max_scroll: int


@dataclass(slots=True)
class Window:
    """A laid-out window: its node tree plus what a tap or a swipe can reach, in drawing order."""

    root: UiNode
    targets: list[Target] = field(default_factory=list)
    scrollers: list[Scroller] = field(default_factory=list)

    def target_at(self, x: float, y: float) -> Target | None:
        """The top-most clickable or editable node under the point (children are drawn over parents)."""
        for target in reversed(self.targets):
            if target.bounds.contains(x, y):
                return target
        return None

    def scroller_at(self, x: float, y: float) -> Scroller | None:
        """The innermost scrollable container under the point."""
        for scroller in reversed(self.scrollers):
            if scroller.bounds.contains(x, y):
                return scroller
        return None


def natural_height(widget: WidgetSpec, view: ScreenView) -> int:
    """The height a widget asks for (a scrollable one without `height` asks for the nested default)."""
    if widget.height is not None:
        return widget.height
    if widget.scrollable:
        return NESTED_LIST_HEIGHT
    shown = [c for c in widget.children if c.id not in view.hidden]
    if shown:
        heights = [natural_height(c, view) for c in shown]
        inner = max(heights) if widget.horizontal else sum(heights) + GAP * (len(heights) - 1)
        return inner + 2 * PADDING
    return _HEIGHT_BY_CLASS.get(widget.class_name.rsplit(".", 1)[-1], _DEFAULT_HEIGHT)


def decor_window(package: str, size: Size = PORTRAIT, bars: bool = True) -> tuple[UiNode, UiNode]:
    """An activity's window as DecorView makes it: (its root, the `android:id/content` frame the
    app's views go in). `bars`: the window draws the system bars' backgrounds (an app's does; the
    launcher's bars are transparent and its content reaches under them)."""
    screen_width, screen_height = size
    full = Bounds(0, 0, screen_width, screen_height)
    root = UiNode(WINDOW_CLASS, full, package=package)
    frame = UiNode("android.widget.LinearLayout", full, package=package)
    content_bounds = Bounds(0, CONTENT_TOP, screen_width, screen_height - NAV_BAR_HEIGHT) if bars else full
    content = UiNode(WINDOW_CLASS, content_bounds, resource_id=CONTENT_ID, package=package)
    frame.children.append(content)
    root.children.append(frame)
    if bars:
        root.children.append(
            UiNode(
                "android.view.View",
                Bounds(0, 0, screen_width, CONTENT_TOP),
                resource_id=STATUS_BAR_BACKGROUND_ID,
                package=package,
            )
        )
        root.children.append(
            UiNode(
                "android.view.View",
                Bounds(0, screen_height - NAV_BAR_HEIGHT, screen_width, screen_height),
                resource_id=NAV_BAR_BACKGROUND_ID,
                package=package,
            )
        )
    return root, content


def layout_screen(package: str, screen: ScreenSpec, view: ScreenView, size: Size = PORTRAIT) -> Window:
    """Lay out one app screen as the window on top of a `size` (width, height) display."""
    screen_width, screen_height = size
    content_bottom = screen_height - NAV_BAR_HEIGHT
    root, content = decor_window(package, size)
    window = Window(root)
    top = CONTENT_TOP
    if screen.title is not None:
        toolbar_bounds = Bounds(0, top, screen_width, top + TOOLBAR_HEIGHT)
        title = UiNode(
            "android.widget.TextView",
            Bounds(MARGIN, top + GAP, screen_width - MARGIN, top + TOOLBAR_HEIGHT - GAP),
            text=screen.title,
            package=package,
        )
        toolbar = UiNode(
            "android.view.ViewGroup", toolbar_bounds, resource_id=f"{package}:id/toolbar", package=package
        )
        toolbar.children.append(title)
        content.children.append(toolbar)
        top += TOOLBAR_HEIGHT
    shown = [w for w in screen.widgets if w.id not in view.hidden]
    heights = [natural_height(w, view) for w in shown]
    y = top + GAP
    for index, widget in enumerate(shown):
        height = heights[index]
        if widget.scrollable and widget.height is None:
            after = sum(heights[index + 1 :]) + GAP * (len(shown) - index - 1)
            height = max(MIN_LIST_HEIGHT, content_bottom - GAP - y - after)
        bounds = Bounds(MARGIN, y, screen_width - MARGIN, y + height)
        if bounds.bottom > content_bottom:
            break  # this one and every later one would hang below the screen's content area
        content.children.append(_place(package, widget, bounds, view, window))
        y += height + GAP
    return window


def _place(
    package: str,
    widget: WidgetSpec,
    bounds: Bounds,
    view: ScreenView,
    window: Window,
    clip: Bounds | None = None,
) -> UiNode:
    """The widget's node at `bounds`; inside a list, `clip` is the list's viewport: the node shows
    (and is tapped) only where it lies inside it, and children outside it are left out."""
    shown_bounds = bounds if clip is None else _intersect(bounds, clip)
    text = view.texts.get(widget.id, widget.text)
    node = UiNode(
        widget.class_name,
        shown_bounds,
        text="\u2022" * len(text) if widget.password else text,
        resource_id=widget.resource_id,
        content_desc=widget.content_desc,
        package=package,
        clickable=widget.clickable or widget.editable,  # a phone's text field is clickable
        editable=widget.editable,
        scrollable=widget.scrollable,
        focused=widget.id == view.focused,
        password=widget.password,
        checkable=widget.checkable,
        checked=view.checked.get(widget.id, widget.checked),
    )
    if widget.clickable or widget.editable:
        window.targets.append(Target(shown_bounds, widget.id, widget.clickable, widget.editable))
    shown = [c for c in widget.children if c.id not in view.hidden]
    if not shown:
        node.scrollable = False  # nothing in it to scroll
        return node
    if widget.scrollable:
        _place_scrolled(package, widget, shown, bounds, view, window, node, clip)
    elif widget.horizontal:
        inner = _inset(bounds, PADDING)
        width = (inner.width - GAP * (len(shown) - 1)) // len(shown)
        for index, child in enumerate(shown):
            left = inner.left + index * (width + GAP)
            child_bounds = Bounds(left, inner.top, left + width, inner.top + natural_height(child, view))
            if child_bounds.bottom <= inner.bottom and _overlaps(child_bounds, clip):
                node.children.append(_place(package, child, child_bounds, view, window, clip))
    else:
        inner = _inset(bounds, PADDING)
        y = inner.top
        for child in shown:
            child_bounds = Bounds(inner.left, y, inner.right, y + natural_height(child, view))
            if child_bounds.bottom > inner.bottom:
                break
            if _overlaps(child_bounds, clip):
                node.children.append(_place(package, child, child_bounds, view, window, clip))
            y = child_bounds.bottom + GAP
    return node


def _place_scrolled(
    package: str,
    widget: WidgetSpec,
    shown: Sequence[WidgetSpec],
    viewport: Bounds,
    view: ScreenView,
    window: Window,
    node: UiNode,
    clip: Bounds | None = None,
) -> None:
    heights = [natural_height(c, view) for c in shown]
    # What shows of the list: its viewport, cut by an outer list's when it lies in one.
    seen = viewport if clip is None else _intersect(viewport, clip)
    max_scroll = max(0, sum(heights) - viewport.height)
    # A list whose items all fit does not scroll, and says so (`scrollable` false), as Android's do.
    node.scrollable = max_scroll > 0
    # Registered before the children so that an inner list wins `scroller_at`.
    window.scrollers.append(Scroller(seen, widget.id, max_scroll))
    offset = min(max(view.scroll.get(widget.id, 0), 0), max_scroll)
    y = viewport.top - offset
    for child, height in zip(shown, heights, strict=True):
        top, y = y, y + height
        if y <= seen.top:
            continue
        if top >= seen.bottom:
            break
        child_bounds = Bounds(viewport.left, top, viewport.right, y)
        # A row cut by the viewport's edge is in the tree with the bounds of what shows of it.
        node.children.append(_place(package, child, child_bounds, view, window, seen))


def _intersect(a: Bounds, b: Bounds) -> Bounds:
    return Bounds(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom))


def _overlaps(bounds: Bounds, clip: Bounds | None) -> bool:
    if clip is None:
        return True
    return (
        bounds.left < clip.right
        and clip.left < bounds.right
        and bounds.top < clip.bottom
        and clip.top < bounds.bottom
    )


def _inset(bounds: Bounds, by: int) -> Bounds:
    return Bounds(bounds.left + by, bounds.top + by, bounds.right - by, bounds.bottom - by)


def layout_home(apps: Sequence[AppSpec], size: Size = PORTRAIT) -> Window:
    """The launcher: one clickable icon (a TextView with the label) per app, four to a row.

    Each target's `widget_id` is the app's package.
    """
    screen_width, screen_height = size
    content_bottom = screen_height - NAV_BAR_HEIGHT
    root, content = decor_window(LAUNCHER_PACKAGE, size, bars=False)
    window = Window(root)
    cell_width = screen_width // HOME_COLUMNS
    for index, app in enumerate(apps):
        row, column = divmod(index, HOME_COLUMNS)
        top = CONTENT_TOP + GAP + row * HOME_CELL_HEIGHT
        bounds = Bounds(
            column * cell_width + 15, top, (column + 1) * cell_width - 15, top + HOME_CELL_HEIGHT - 30
        )
        if bounds.bottom > content_bottom:
            break
        content.children.append(
            UiNode(
                "android.widget.TextView",
                bounds,
                text=app.label,
                content_desc=app.label,
                package=LAUNCHER_PACKAGE,
                clickable=True,
            )
        )
        window.targets.append(Target(bounds, app.package, clickable=True, editable=False))
    return window


def toast_node(text: str, package: str, size: Size = PORTRAIT) -> UiNode:
    """A toast as its own window: a TextView centred near the bottom of the screen."""
    screen_width, screen_height = size
    top = screen_height - SCREEN_HEIGHT + TOAST_TOP  # as far above the bottom as in portrait
    width = min(screen_width - 2 * MARGIN, 120 + 30 * len(text))
    left = (screen_width - width) // 2
    return UiNode(
        "android.widget.TextView",
        Bounds(left, top, left + width, top + TOAST_HEIGHT),
        text=text,
        resource_id="android:id/message",
        package=package,
    )


SYSTEMUI_PACKAGE = "com.android.systemui"
# The quick settings tiles of the shade: (label, state); the notification shade shows the first row.
_TILES = (
    ("Internet", "On"), ("Bluetooth", "Off"), ("Do Not Disturb", "Off"), ("Flashlight", "Off"),
    ("Auto-rotate", "Off"), ("Battery Saver", "Off"), ("Airplane mode", "Off"), ("Screen record", "Off"),
)  # fmt: skip
_TILE_HEIGHT = 180
SHADE_TILES_ROW = 4


def shade_node(quick_settings: bool, size: Size = PORTRAIT) -> UiNode:
    """The notification shade (`quick_settings`: pulled down fully) as System UI's window over the app.

    Tiles are TextViews whose content-desc is `LABEL, STATE`; the notification shade shows one row of
    tiles and "No notifications", the quick settings all tiles.
    """
    screen_width, screen_height = size
    root = UiNode(
        WINDOW_CLASS,
        Bounds(0, 0, screen_width, screen_height),
        resource_id=f"{SYSTEMUI_PACKAGE}:id/notification_panel",
        package=SYSTEMUI_PACKAGE,
    )
    tiles = _TILES if quick_settings else _TILES[:SHADE_TILES_ROW]
    width = (screen_width - 2 * MARGIN) // SHADE_TILES_ROW
    for index, (label, state) in enumerate(tiles):
        row, column = divmod(index, SHADE_TILES_ROW)
        left, top = MARGIN + column * width, CONTENT_TOP + GAP + row * (_TILE_HEIGHT + GAP)
        root.children.append(
            UiNode(
                "android.widget.TextView",
                Bounds(left, top, left + width - GAP, top + _TILE_HEIGHT),
                text=label,
                content_desc=f"{label}, {state}",
                resource_id=f"{SYSTEMUI_PACKAGE}:id/tile_label",
                package=SYSTEMUI_PACKAGE,
            )
        )
    if not quick_settings:
        top = CONTENT_TOP + 2 * GAP + _TILE_HEIGHT
        root.children.append(
            UiNode(
                "android.widget.TextView",
                Bounds(MARGIN, top, screen_width - MARGIN, top + _HEIGHT_BY_CLASS["TextView"]),
                text="No notifications",
                resource_id=f"{SYSTEMUI_PACKAGE}:id/no_notifications",
                package=SYSTEMUI_PACKAGE,
            )
        )
    return root


MENU_WIDTH = 588
MENU_ITEM_HEIGHT = 132


def menu_node(package: str, items: Sequence[MenuItem], size: Size = PORTRAIT) -> tuple[UiNode, list[Target]]:
    """A screen's options menu as a popup window at the top right: a ListView of item titles.

    Each target's `widget_id` is the menu item's id.
    """
    left, top = size[0] - MARGIN // 2 - MENU_WIDTH, CONTENT_TOP + GAP // 2
    bounds = Bounds(left, top, left + MENU_WIDTH, top + MENU_ITEM_HEIGHT * len(items))
    popup = UiNode(WINDOW_CLASS, bounds, package=package)
    listing = UiNode("android.widget.ListView", bounds, package=package)
    popup.children.append(listing)
    targets: list[Target] = []
    for index, item in enumerate(items):
        item_top = top + index * MENU_ITEM_HEIGHT
        item_bounds = Bounds(left, item_top, left + MENU_WIDTH, item_top + MENU_ITEM_HEIGHT)
        row = UiNode("android.widget.LinearLayout", item_bounds, package=package, clickable=True)
        title_bounds = _inset(item_bounds, GAP)
        row.children.append(
            UiNode(
                "android.widget.TextView",
                Bounds(
                    title_bounds.left + MARGIN - GAP,
                    title_bounds.top,
                    title_bounds.right,
                    title_bounds.bottom,
                ),
                text=item.text,
                resource_id="android:id/title",
                package=package,
            )
        )
        listing.children.append(row)
        targets.append(Target(item_bounds, item.id, clickable=True, editable=False))
    return popup, targets
