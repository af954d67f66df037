"""What uiautomator2's own device tests (`mobile_tests/`, written for a real phone) expect of a phone,
asked of the virtual device through the real adb server and the unmodified uiautomator2 3.7.1 client.

Each test is one fidelity gap found by running those tests against the virtual device: the
foreground app as Android 14 reports it, pids, the device shell, ...
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from conftest import start_emulator

from emulator.runner import Emulator
from interpreter.appmodel import sample_apps

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

SHOP = "com.example.shop"


@pytest.fixture(scope="module")
def emulator(adb: str) -> Iterator[Emulator]:
    emu = start_emulator(sample_apps())
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def d(emulator: Emulator):  # type: ignore[no-untyped-def]
    import uiautomator2

    device = uiautomator2.connect(emulator.serial)
    yield device
    device.stop_uiautomator()


# --- the app in front, as Android 14 reports it (issue item 5) ---------------------------------


def test_app_current_has_the_short_activity_and_the_apps_pid(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, stop=True)
    current = d.app_current()
    assert current["package"] == SHOP
    assert current["activity"] == ".LoginActivity"
    pid = current["pid"]
    assert pid > 0
    assert d.wait_activity(".LoginActivity", timeout=3)
    # The same pid in ps, pidof and the client's own lookup, and it stays while the app runs.
    assert d._pidof_app(SHOP) == pid
    assert d.shell(f"pidof {SHOP}").output.split() == [str(pid)]
    d(text="Sign in").click()
    assert d.wait_activity(".OrdersActivity", timeout=3)
    assert d.app_current()["pid"] == pid
    # A new process after a stop and a start.
    d.app_start(SHOP, stop=True)
    assert d.app_current()["pid"] not in (0, pid)


def test_dumpsys_window_prints_focus_where_android_14_does(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, stop=True)
    windows = d.shell("dumpsys window windows").output
    assert "Window{" in windows
    assert f"{SHOP}/{SHOP}.LoginActivity}}" in windows
    assert "mCurrentFocus" not in windows  # gone from this section since Android 13
    displays = d.shell("dumpsys window displays").output
    assert re.search(rf"mCurrentFocus=Window{{\w+ u0 {SHOP}/{SHOP}\.LoginActivity}}", displays)
    assert re.search(rf"mFocusedApp=ActivityRecord{{\w+ u0 {SHOP}/\.LoginActivity t\d+}}", displays)


def test_pidof(d) -> None:  # type: ignore[no-untyped-def]
    assert d.shell("pidof surfaceflinger").output.strip() == "339"
    missing = d.shell("pidof com.not.running")
    assert (missing.output, missing.exit_code) == ("", 1)


# --- the device shell and network (issue item 9) ------------------------------------------------


def test_wlan_ip(d) -> None:  # type: ignore[no-untyped-def]
    assert d.wlan_ip == "10.0.2.16"
    assert "inet 10.0.2.16/24" in d.shell("ip addr show dev wlan0").output


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("echo $((1 + 2 * 3))", "7"),
        ("N=7; echo $(( (N + 1) / 3 )) $((N % 4)) $((-7 / 2))", "2 3 -3"),
        ('echo "$((0x10 << 2)) $((3 > 2 && 1 == 1)) $((5 ? 10 : 20))"', "64 1 10"),
        ("echo $((1 / 0)); echo after", "after"),
    ],
)
def test_shell_arithmetic(d, line: str, output: str) -> None:  # type: ignore[no-untyped-def]
    assert d.shell(line).output.strip().splitlines()[-1] == output


# --- device state (issue item 9) ----------------------------------------------------------------


def test_screen_off_and_unlock_share_one_power_state(d) -> None:  # type: ignore[no-untyped-def]
    d.screen_off()
    assert d.info["screenOn"] is False
    assert d.adb_device.is_screen_on() is False  # `dumpsys power`
    d.unlock()  # `input keyevent POWER` when deviceInfo says the screen is off, then a swipe
    assert d.info["screenOn"] is True
    assert d.adb_device.is_screen_on() is True
    d.shell("input keyevent SLEEP")
    assert d.info["screenOn"] is False
    d.press("power")
    assert "mWakefulness=Awake" in d.shell("dumpsys power").output
    d.screen_on()
    assert d.info["screenOn"] is True


def test_notification_shade_and_quick_settings(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, stop=True)
    assert d.open_notification() is True
    assert d(text="No notifications").wait(timeout=3)
    assert d(description="Internet, On", packageName="com.android.systemui").exists
    d.press("back")
    assert d(text="No notifications").wait_gone(timeout=3)
    assert d(text="Sign in").exists
    d.open_quick_settings()
    assert d(text="Airplane mode").wait(timeout=3)
    d.press("home")
    assert not d(text="Airplane mode").exists
    assert d.app_current()["package"] != SHOP


def test_toast_show_is_drawn(d) -> None:  # type: ignore[no-untyped-def]
    d.toast.show("Hello from the test", 2)
    assert d(text="Hello from the test").wait(timeout=3)
    assert d.xpath('//*[@text="Hello from the test"]').info["packageName"] == "com.github.uiautomator"
    assert d.last_toast == "Hello from the test"
    d.clear_toast()
    assert d.last_toast is None


# --- activities and deep links (issue item 8) ---------------------------------------------------


def test_app_start_opens_the_named_activity(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, ".OrdersActivity", stop=True)  # am start -a MAIN -c LAUNCHER -n SHOP/.OrdersActivity
    assert d.wait_activity(".OrdersActivity", timeout=3)
    assert d(text="Refresh").exists
    started = d.shell(f"am start -W -n {SHOP}/.NewOrderActivity")
    assert "Activity: com.example.shop/.NewOrderActivity" in started.output
    assert d.app_current()["activity"] == ".NewOrderActivity"
    d.press("back")  # the activity was put on top of the app's task
    assert d.wait_activity(".OrdersActivity", timeout=3)
    # The launcher activity brings a running app to the front where it was.
    launcher = "-a android.intent.action.MAIN -c android.intent.category.LAUNCHER"
    d.shell(f"am start -n {SHOP}/.LoginActivity {launcher}")
    assert d.app_current()["activity"] == ".OrdersActivity"
    missing = d.shell(f"am start -n {SHOP}/.NoSuchActivity")
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_open_url_follows_the_app_models_deep_links(d) -> None:  # type: ignore[no-untyped-def]
    d.app_stop(SHOP)
    d.press("home")
    d.open_url("shop://orders/new?item=42")  # the longest matching prefix wins
    assert d.wait_activity(".NewOrderActivity", timeout=3)
    d.open_url("https://shop.example.com/orders")
    assert d.wait_activity(".OrdersActivity", timeout=3)
    d.adb_device.open_browser("shop.example.com/orders")  # adbutils: https:// in front
    assert d.app_current()["activity"] == ".OrdersActivity"
    unknown = d.shell("am start -a android.intent.action.VIEW -d nothing://here")
    assert unknown.exit_code == 1
    assert "unable to resolve Intent { act=android.intent.action.VIEW dat=nothing://here }" in unknown.output
    assert d.app_current()["activity"] == ".OrdersActivity"


# --- the options menu (issue item 9) ------------------------------------------------------------


def test_menu_key_opens_the_screens_options_menu(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, ".OrdersActivity", stop=True)
    assert not d(text="Help").exists
    d.press("menu")
    assert d(text="Help", resourceId="android:id/title").wait(timeout=3)
    d(text="Help").click()
    assert d.toast.get_message(wait_timeout=3) == "Orders are synced every hour"
    assert not d(text="Help").exists  # choosing an item closes the menu
    d.press("menu")
    d.press("back")  # back closes the menu and stays on the screen
    assert not d(text="Help").exists
    assert d.app_current()["activity"] == ".OrdersActivity"
    d.shell("input keyevent KEYCODE_MENU")
    d(text="New order", resourceId="android:id/title").click()
    assert d.wait_activity(".NewOrderActivity", timeout=3)
    d.press("menu")  # a screen without a menu: nothing opens
    assert not d(resourceId="android:id/title").exists


# --- gestures take time, and fling (issue item 7) -----------------------------------------------

CATALOGUE = "com.example.catalogue"


def _first_item(d) -> int:  # type: ignore[no-untyped-def]
    """The number of the top-most list row on screen."""
    texts = [e.text for e in d.xpath("//*[starts-with(@text, 'Item ')]").all()]
    items = [int(t.removeprefix("Item ")) for t in texts]
    return min(items) if items else 0


def _scrolled_by(d, **swipe) -> int:  # type: ignore[no-untyped-def]
    d.app_start(CATALOGUE, stop=True)
    assert d(text="Item 1").wait(timeout=3)
    d.swipe(540, 1800, 540, 900, **swipe)
    return _first_item(d)


def test_a_swipe_takes_its_duration(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(CATALOGUE, stop=True)
    started = time.monotonic()
    d.swipe(540, 1800, 540, 1500, duration=1)  # 200 steps of 5 ms
    assert time.monotonic() - started >= 0.9


def test_a_fast_swipe_flings_further_than_a_slow_one(d) -> None:  # type: ignore[no-untyped-def]
    slow = _scrolled_by(d, duration=1.0)
    fast = _scrolled_by(d, steps=10)  # 50 ms
    assert 1 < slow < fast
    # A move inside the touch slop scrolls nothing.
    d.app_start(CATALOGUE, stop=True)
    d.swipe(540, 1800, 540, 1785, duration=0.5)
    assert _first_item(d) == 1
    # adb's `input swipe` with a duration, too.
    d.app_start(CATALOGUE, stop=True)
    d.shell("input swipe 540 1800 540 900 1000")
    assert _first_item(d) == slow


# --- what the hierarchy shows of a list (issue item 6) ------------------------------------------


def test_a_half_visible_row_is_dumped_with_its_visible_bounds(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(CATALOGUE, stop=True)
    listing = d(scrollable=True)
    assert listing.wait(timeout=3)
    bottom = listing.info["visibleBounds"]["bottom"]
    cut = d(text="Item 16")  # its row runs 6 px past the list's bottom edge
    assert cut.exists
    bounds = cut.info["bounds"]
    assert bounds["bottom"] == bottom
    assert bounds["bottom"] - bounds["top"] < 120  # a full row is 120 px
    assert d.xpath('//*[@text="Item 16"]').exists
    assert not d(text="Item 17").exists  # wholly below the list
    d.swipe(540, 1800, 540, 1200, duration=1)
    top = d(scrollable=True).info["visibleBounds"]["top"]
    rows = [e.info for e in d.xpath("//*[starts-with(@text, 'Item ')]").all()]
    first = min(rows, key=lambda info: info["bounds"]["top"])
    assert first["bounds"]["top"] == top  # the row cut at the top edge is there too
    cut.click()  # a half-visible row is tapped where it shows


def test_a_list_that_fits_is_not_scrollable(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start("com.android.settings", stop=True)
    assert d(text="Wi-Fi").wait(timeout=3)
    assert not d(scrollable=True).exists  # its four entries fit on the screen
    d.app_start(CATALOGUE, stop=True)
    assert d(scrollable=True).wait(timeout=3)


# --- rotation (issue item 9) --------------------------------------------------------------------


def test_rotation_lays_the_screen_out_in_landscape(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP, stop=True)
    try:
        d.set_orientation("left")
        assert d.orientation == "left"
        assert d.info["displayRotation"] == 1
        assert (d.info["displayWidth"], d.info["displayHeight"]) == (2340, 1080)
        assert d.window_size() == (2340, 1080)  # `wm size` stays physical; `dumpsys display` turns it
        assert '<hierarchy rotation="1">' in d.dump_hierarchy()
        sign_in = d(text="Sign in")
        assert sign_in.info["bounds"]["right"] > 1080  # laid out across the wide screen
        sign_in.click()
        assert d.wait_activity(".OrdersActivity", timeout=3)
        assert d.screenshot().size == (2340, 1080)
        d.set_orientation("natural")
        assert d.window_size() == (1080, 2340)
        assert d(text="Refresh").info["bounds"]["right"] <= 1080
        d.shell("settings put system user_rotation 3")  # what auto-rotate off obeys
        assert d.info["displayRotation"] == 3
    finally:
        d.set_orientation("natural")
