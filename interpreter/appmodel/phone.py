"""A running phone over the app model: which apps run, their back stacks, what is typed where.

`PhoneState` is the one place that moves a simulated phone; the simulator and the
emulator both drive it. Time comes from the `now` callable, so a virtual clock decides
when delayed widgets appear and when a toast goes away.

Rules worth knowing:
- a cold start opens the start screen; a warm launch shows the app where it was;
- `back` pops the app's back stack; leaving its first screen returns to the app that
  opened it (`openApp`) if that still runs, otherwise home; the app keeps running;
- a widget's `appearAfterMs` counts from when its screen was opened (pushed), not from
  when it was last revealed by `back`;
- typed text, tap counts, shown/hidden widgets and scroll offsets live per screen while
  the app runs; `stop` forgets them;
- a toast is in the hierarchy for 3.5 s of `now()` time;
- the menu key opens the screen's options menu (a popup over the app) when it has one; a tap
  on an item runs its actions, any other tap, a swipe, `back` or `menu` closes it;
- `start_activity` and `open_url` (deep links) open a screen on top of the app's back stack.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from interpreter.appmodel.gestures import scroll_distance
from interpreter.appmodel.layout import (
    ScreenView,
    Window,
    layout_home,
    layout_screen,
    menu_node,
    shade_node,
    toast_node,
)
from interpreter.appmodel.model import (
    LAUNCHER_ACTIVITY,
    LAUNCHER_PACKAGE,
    Action,
    AppModel,
    AppSpec,
    Back,
    DeepLink,
    GoTo,
    Home,
    OpenApp,
    ScreenSpec,
    SetText,
    SetVisible,
    ShowToast,
    WidgetSpec,
)
from interpreter.errors import AppNotInstalledError
from interpreter.hierarchy import SCREEN_HEIGHT, SCREEN_WIDTH, Bounds, UiNode

TOAST_SECONDS = 3.5
_NEVER = float("inf")


@dataclass(slots=True)
class _ScreenState:
    texts: dict[str, str] = field(default_factory=dict)
    visibility: dict[str, bool] = field(default_factory=dict)
    taps: dict[str, int] = field(default_factory=dict)
    scroll: dict[str, int] = field(default_factory=dict)
    checked: dict[str, bool] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Entry:
    """One screen on an app's back stack."""

    screen: ScreenSpec
    shown_at: float


@dataclass(slots=True)
class _AppRun:
    app: AppSpec
    stack: list[_Entry]
    screens: dict[str, _ScreenState] = field(default_factory=dict)
    opened_from: str | None = None

    def state(self, screen_id: str) -> _ScreenState:
        state = self.screens.get(screen_id)
        if state is None:
            state = self.screens[screen_id] = _ScreenState()
        return state


@dataclass(slots=True)
class _Toast:
    text: str
    package: str
    until: float


def _attaches(char: str) -> bool:
    """A code point that belongs to the character before it: a combining mark, a variation selector,
    a skin tone, an emoji tag, a zero-width joiner."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == "\u200d"
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def without_last_character(text: str) -> str:
    """`text` after a backspace: the last character as a person sees it goes whole, as on Android: an
    emoji with its skin tone or joined family, a flag (two regional letters), a letter with its accents,
    a CRLF line break."""
    end = len(text)
    if not end:
        return text
    if text.endswith("\r\n"):
        return text[:-2]
    if _regional(text[-1]):
        run = len(text) - len(text.rstrip("".join(chr(c) for c in range(0x1F1E6, 0x1F200))))
        return text[: end - (2 if run % 2 == 0 else 1)]
    start = end
    while True:
        while start > 0 and _attaches(text[start - 1]):
            start -= 1
        if start > 0:
            start -= 1  # the base character the marks attach to
        if start > 0 and text[start - 1] == "\u200d":
            start -= 1  # joined to the emoji before it: that one goes too
            continue
        return text[:start]


def _conditional_widgets(screen: ScreenSpec) -> tuple[WidgetSpec, ...]:
    return tuple(
        w
        for w in screen.by_id.values()
        if not w.visible or w.appear_after_ms or w.appear_after_taps is not None
    )


class PhoneState:
    """A phone running the model's apps. Mutable and single-threaded."""

    rotation: int = 0  # 0 natural (portrait), 1 left (90°), 2 upside down, 3 right (270°)

    def __init__(self, model: AppModel, now: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.now = now
        self.clipboard = ""
        self._runs: dict[str, _AppRun] = {}  # running apps, the most recently in front last
        self._foreground = LAUNCHER_PACKAGE
        self._focus: tuple[_Entry, str] | None = None
        self._toast: _Toast | None = None
        self._shade: str | None = None  # "notifications" | "quick_settings" while the shade is down
        self._menu: _Entry | None = None  # the screen whose options menu is open
        self._version = 0
        self._cache_key: tuple[int, float] = (-1, 0.0)  # (version, valid until)
        self._cache: tuple[UiNode, Window] | None = None
        self._conditional: dict[int, tuple[WidgetSpec, ...]] = {}

    # --- the display -----------------------------------------------------------------------

    @property
    def width(self) -> int:
        """The display's width as apps see it: the portrait width, or the height when rotated 90°/270°."""
        return SCREEN_HEIGHT if self.rotation % 2 else SCREEN_WIDTH

    @property
    def height(self) -> int:
        return SCREEN_WIDTH if self.rotation % 2 else SCREEN_HEIGHT

    def set_rotation(self, rotation: int) -> None:
        """Turn the display (0..3, quarter turns counter-clockwise): every screen is laid out anew
        for the new width and height; what the apps hold (back stacks, texts, scrolls) stays."""
        if rotation not in (0, 1, 2, 3):
            raise ValueError(f"rotation must be 0, 1, 2 or 3, not {rotation!r}")
        if rotation != self.rotation:
            self.rotation = rotation
            self._changed()

    # --- apps ------------------------------------------------------------------------------

    def installed_packages(self) -> list[str]:
        """The model's apps (the launcher is always there too, but not listed)."""
        return self.model.packages

    def is_installed(self, package: str) -> bool:
        return package == LAUNCHER_PACKAGE or self.model.has(package)

    def app_label(self, package: str) -> str:
        """The label under the app's icon; `AppNotInstalledError` for an unknown package."""
        if package == LAUNCHER_PACKAGE:
            return "Pixel Launcher"
        if not self.model.has(package):
            raise AppNotInstalledError(package)
        return self.model.app(package).label

    def launch(self, package: str) -> None:
        """Bring the app to the front: a cold start shows its start screen, a warm one where it was."""
        self._launch(package, opened_from=None)

    def _launch(self, package: str, opened_from: str | None) -> None:
        if package == LAUNCHER_PACKAGE:
            self._go_home()
            return
        if not self.model.has(package):
            raise AppNotInstalledError(package)
        run = self._runs.pop(package, None)
        if run is None:
            app = self.model.app(package)
            run = _AppRun(app, [_Entry(app.screen(app.start_screen), self.now())])
        run.opened_from = opened_from if opened_from != package else run.opened_from
        self._runs[package] = run
        self._foreground = package
        self._menu = None
        self._changed()

    def start_activity(self, package: str, activity: str) -> bool:
        """`am start -n PKG/ACTIVITY`: the launcher activity launches the app (as `launch` does);
        another screen's activity opens that screen on top of the app's back stack (alone on a
        cold start). False when no screen of the app has that activity."""
        if not self.model.has(package):
            raise AppNotInstalledError(package)
        app = self.model.app(package)
        qualified = package + activity if activity.startswith(".") else activity
        if qualified == app.launch_activity:
            self.launch(package)
            return True
        screen = app.screen_of_activity(qualified)
        if screen is None:
            return False
        self._open_screen(app, screen)
        return True

    def open_url(self, url: str, package: str | None = None) -> str | None:
        """A VIEW intent for `url` (only to `package` when given): the app whose deep link has the
        longest matching prefix opens the link's screen on top of its back stack. The package
        that opened it, or None when no app of the model handles the URL."""
        best: tuple[AppSpec, DeepLink] | None = None
        for app in self.model.apps:
            link = app.deep_link(url) if package in (None, app.package) else None
            if link is not None and (best is None or len(link.url) > len(best[1].url)):
                best = (app, link)
        if best is None:
            return None
        app, link = best
        self._open_screen(app, app.screen(link.screen))
        return app.package

    def _open_screen(self, app: AppSpec, screen: ScreenSpec) -> None:
        run = self._runs.pop(app.package, None)
        if run is None:
            run = _AppRun(app, [_Entry(screen, self.now())])
        else:
            run.stack.append(_Entry(screen, self.now()))
        self._runs[app.package] = run
        self._foreground = app.package
        self._menu = None
        self.close_shade()
        self._changed()

    def stop(self, package: str) -> None:
        """Force-stop: forget the app's back stack and state; home if it was in front."""
        if self._runs.pop(package, None) is None:
            return
        self._menu = None
        if self._foreground == package:
            self._foreground = LAUNCHER_PACKAGE
        self._changed()

    def running_packages(self) -> list[str]:
        """Running apps, the one most recently in front last."""
        return list(self._runs)

    def foreground_package(self) -> str:
        return self._foreground

    def foreground_activity(self) -> str:
        """The fully qualified activity on top, e.g. `com.example.shop.OrdersActivity`."""
        run = self._runs.get(self._foreground)
        return run.stack[-1].screen.activity if run else LAUNCHER_ACTIVITY

    def current_screen(self) -> str | None:
        """The id of the screen in front, or None at home."""
        run = self._runs.get(self._foreground)
        return run.stack[-1].screen.id if run else None

    # --- the screen ------------------------------------------------------------------------

    def hierarchy(self) -> UiNode:
        """The window hierarchy: a full-screen `hierarchy` root holding the window and any toast.

        Cached until the state changes or the next delayed widget or toast expiry is due:
        while nothing changed the very same object comes back (`is` tells a renderer it
        can reuse its last frame). Callers must not mutate the tree.
        """
        return self._layout()[0]

    def _layout(self) -> tuple[UiNode, Window]:
        now = self.now()
        version, valid_until = self._cache_key
        if self._cache is not None and version == self._version and now < valid_until:
            return self._cache
        next_change = _NEVER
        run = self._runs.get(self._foreground)
        if run is None:
            window = layout_home(self.model.apps, (self.width, self.height))
        else:
            entry = run.stack[-1]
            view, next_change = self._view(run, entry, now)
            window = layout_screen(run.app.package, entry.screen, view, (self.width, self.height))
        root = UiNode("hierarchy", Bounds(0, 0, self.width, self.height))
        root.children.append(window.root)
        if run is not None and self._menu is run.stack[-1]:
            root.children.append(
                menu_node(run.app.package, self._menu.screen.menu, (self.width, self.height))[0]
            )
        if self._shade is not None:
            root.children.append(shade_node(self._shade == "quick_settings", (self.width, self.height)))
        toast = self._toast
        if toast is not None and now < toast.until:
            root.children.append(toast_node(toast.text, toast.package, (self.width, self.height)))
            next_change = min(next_change, toast.until)
        self._cache = (root, window)
        self._cache_key = (self._version, next_change)
        return self._cache

    def _view(self, run: _AppRun, entry: _Entry, now: float) -> tuple[ScreenView, float]:
        screen = entry.screen
        state = run.state(screen.id)
        conditional = self._conditional.get(id(screen))
        if conditional is None:
            conditional = self._conditional[id(screen)] = _conditional_widgets(screen)
        hidden: set[str] = set()
        next_change = _NEVER
        for widget in conditional:
            shown = state.visibility.get(widget.id)
            if shown is None:
                shown = widget.visible
                if shown and widget.appear_after_ms:
                    due = entry.shown_at + widget.appear_after_ms / 1000
                    if now < due:
                        shown = False
                        next_change = min(next_change, due)
                taps = widget.appear_after_taps
                if shown and taps is not None:
                    shown = state.taps.get(taps.widget, 0) >= taps.count
            if not shown:
                hidden.add(widget.id)
        # A widget shown from the start and hidden by a `hide` action is not among the conditional ones.
        hidden.update(widget_id for widget_id, shown in state.visibility.items() if not shown)
        focused = self._focus[1] if self._focus is not None and self._focus[0] is entry else None
        view = ScreenView(
            texts=state.texts, hidden=hidden, scroll=state.scroll, focused=focused, checked=state.checked
        )
        return view, next_change

    def _changed(self) -> None:
        self._version += 1

    # --- input -----------------------------------------------------------------------------

    def tap(self, x: float, y: float) -> None:
        """Tap the top-most clickable or editable widget under the point: focus an editable, run onClick."""
        if self._shade is not None:
            return  # the shade covers the app; its tiles do nothing here
        if self._menu is not None:
            self._tap_menu(x, y)
            return
        _, window = self._layout()
        target = window.target_at(x, y)
        if target is None:
            return
        run = self._runs.get(self._foreground)
        if run is None:
            self.launch(target.widget_id)  # a launcher icon
            return
        entry = run.stack[-1]
        if target.editable:
            self._focus = (entry, target.widget_id)
        if target.clickable:
            state = run.state(entry.screen.id)
            state.taps[target.widget_id] = state.taps.get(target.widget_id, 0) + 1
            widget = entry.screen.widget(target.widget_id)
            if widget.checkable:
                # A tap toggles a CompoundButton; a checked radio button stays checked.
                was = state.checked.get(widget.id, widget.checked)
                state.checked[widget.id] = True if widget.class_name.endswith("RadioButton") else not was
            for action in widget.on_click:
                self._run_action(run, entry.screen, action)
        self._changed()

    def _tap_menu(self, x: float, y: float) -> None:
        """A tap while the options menu is open: an item runs its actions; anywhere else closes it."""
        entry, self._menu = self._menu, None
        run = self._runs.get(self._foreground)
        if entry is not None and run is not None and entry is run.stack[-1]:
            for target in menu_node(run.app.package, entry.screen.menu, (self.width, self.height))[1]:
                if target.bounds.contains(x, y):
                    item = next(i for i in entry.screen.menu if i.id == target.widget_id)
                    for action in item.on_click:
                        self._run_action(run, entry.screen, action)
                    break
        self._changed()

    def set_focus(self, node_bounds: Bounds) -> None:
        """Focus the editable widget with exactly these bounds (no-op if there is none)."""
        _, window = self._layout()
        run = self._runs.get(self._foreground)
        for target in window.targets:
            if target.editable and target.bounds == node_bounds and run is not None:
                self._focus = (run.stack[-1], target.widget_id)
                self._changed()
                return

    def _focused(self) -> tuple[_ScreenState, WidgetSpec] | None:
        run = self._runs.get(self._foreground)
        if run is None or self._focus is None or self._focus[0] is not run.stack[-1]:
            return None
        entry, widget_id = self._focus
        return run.state(entry.screen.id), entry.screen.widget(widget_id)

    def input_text(self, text: str) -> None:
        """Append to the focused editable (no-op when nothing is focused)."""
        focused = self._focused()
        if focused is not None:
            state, widget = focused
            state.texts[widget.id] = state.texts.get(widget.id, widget.text) + text
            self._changed()

    def clear_text(self) -> None:
        """Empty the focused editable (no-op when nothing is focused)."""
        focused = self._focused()
        if focused is not None:
            state, widget = focused
            state.texts[widget.id] = ""
            self._changed()

    def press_key(self, key: str) -> None:
        """`back`, `home`, `delete` (backspace) and `space` act; `enter` and every other key do nothing.

        While the notification shade is down, `back` and `home` close it.
        """
        if self._shade is not None and key in ("back", "home"):
            self.close_shade()
            if key == "back":
                return
        if self._menu is not None and key in ("back", "home", "menu"):
            self._menu = None
            self._changed()
            if key != "home":
                return
        if key == "menu":
            run = self._runs.get(self._foreground)
            if run is not None and run.stack[-1].screen.menu:
                self._menu = run.stack[-1]
                self._changed()
        elif key == "home":
            self._go_home()
        elif key == "back":
            run = self._runs.get(self._foreground)
            if run is not None:
                self._back(run)
        elif key == "space":
            self.input_text(" ")
        elif key == "delete":
            focused = self._focused()
            if focused is not None:
                state, widget = focused
                state.texts[widget.id] = without_last_character(state.texts.get(widget.id, widget.text))
                self._changed()

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: float | None = None) -> None:
        """Scroll the scrollable container under the start point; a swipe up moves its content up,
        by the drag past the touch slop plus the fling a swipe of this speed gives
        (`interpreter.appmodel.gestures`; no fling without a duration).

        A swipe up on the notification shade closes it.
        """
        if self._shade is not None:
            if y2 < y1:
                self.close_shade()
            return
        if self._menu is not None:  # a touch outside the popup closes it
            self._menu = None
            self._changed()
            return
        run = self._runs.get(self._foreground)
        if run is None:
            return
        _, window = self._layout()
        scroller = window.scroller_at(x1, y1)
        if scroller is None:
            return
        state = run.state(run.stack[-1].screen.id)
        before = state.scroll.get(scroller.widget_id, 0)
        after = min(max(before + scroll_distance(y1 - y2, duration_ms), 0), scroller.max_scroll)
        if after != before:
            state.scroll[scroller.widget_id] = after
            self._changed()

    # --- system UI ---------------------------------------------------------------------------

    def open_shade(self, quick_settings: bool = False) -> None:
        """Pull the notification shade down over the app (`quick_settings`: all the way)."""
        self._shade = "quick_settings" if quick_settings else "notifications"
        self._changed()

    def close_shade(self) -> None:
        if self._shade is not None:
            self._shade = None
            self._changed()

    @property
    def shade_open(self) -> bool:
        return self._shade is not None

    # --- toasts ----------------------------------------------------------------------------

    def show_toast(self, text: str, package: str, seconds: float = TOAST_SECONDS) -> None:
        """Show a toast of `package` for `seconds` (an app's own `Toast.makeText`)."""
        self._toast = _Toast(text, package, self.now() + seconds)
        self._changed()

    def last_toast(self) -> str | None:
        """The toast on screen now, if any."""
        toast = self._toast
        return toast.text if toast is not None and self.now() < toast.until else None

    def clear_toast(self) -> None:
        if self._toast is not None:
            self._toast = None
            self._changed()

    # --- actions ---------------------------------------------------------------------------

    def _run_action(self, run: _AppRun, screen: ScreenSpec, action: Action) -> None:
        if isinstance(action, GoTo):
            run.stack.append(_Entry(run.app.screen(action.screen), self.now()))
        elif isinstance(action, OpenApp):
            self._launch(action.package, opened_from=run.app.package)
        elif isinstance(action, ShowToast):
            self._toast = _Toast(action.text, run.app.package, self.now() + TOAST_SECONDS)
        elif isinstance(action, Back):
            self._back(run)
        elif isinstance(action, Home):
            self._go_home()
        elif isinstance(action, SetText):
            own = run.state(screen.id)
            if action.copy_from is not None:
                value = own.texts.get(action.copy_from, screen.widget(action.copy_from).text)
            else:
                value = action.text or ""
            run.state(action.screen or screen.id).texts[action.widget] = value
        elif isinstance(action, SetVisible):
            run.state(action.screen or screen.id).visibility[action.widget] = action.visible
        self._changed()

    def _back(self, run: _AppRun) -> None:
        self._menu = None
        if len(run.stack) > 1:
            run.stack.pop()
        elif self._foreground == run.app.package:
            # Leaving the first screen: like Android 12+, the app keeps running in the background.
            back_to = run.opened_from
            run.opened_from = None
            if back_to is not None and back_to in self._runs:
                self._runs[back_to] = self._runs.pop(back_to)
                self._foreground = back_to
            else:
                self._foreground = LAUNCHER_PACKAGE
        self._changed()

    def _go_home(self) -> None:
        self._menu = None
        self._foreground = LAUNCHER_PACKAGE
        self._changed()
