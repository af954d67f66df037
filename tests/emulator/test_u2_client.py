"""The real, unmodified uiautomator2 3.7.1 client against the emulator, through Debian's adb server.

Nothing here talks to the emulator directly: every call goes client → adb server → the emulator's
adb transport → `tcp:9008` → the uiautomator2 server, as it would against a phone. These tests use
console ports 5580/5582 (see conftest.py) so that they do not meet the other suites' devices.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import start_emulator

from emulator.runner import Emulator
from interpreter.appmodel import sample_apps

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

SHOP = "com.example.shop"
# adb finds emulators on console ports 5554-5584 by itself; the other suites keep below 5580. Three
# pairs: with the tests split over two workers each has its own emulator_a, and one starts a second.
OUR_PORTS = range(5580, 5586, 2)


@pytest.fixture(scope="module")
def emulator_a(adb: str) -> Iterator[Emulator]:
    emulator = start_emulator(sample_apps(), OUR_PORTS)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def d(emulator_a: Emulator):  # type: ignore[no-untyped-def]
    import uiautomator2

    device = uiautomator2.connect(emulator_a.serial)
    yield device
    device.stop_uiautomator()


@pytest.fixture
def shop(d):  # type: ignore[no-untyped-def]
    """The shop app freshly started on its sign-in screen."""
    d.app_start(SHOP, stop=True)
    assert d(text="Sign in").wait(timeout=5)
    return d


def test_info_and_window_size(d) -> None:  # type: ignore[no-untyped-def]
    info = d.info
    assert info["displayWidth"] == 1080
    assert info["displayHeight"] == 2340
    assert info["sdkInt"] == 34
    assert d.window_size() == (1080, 2340)


def test_app_start_current_and_stop(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start(SHOP)
    current = d.app_current()
    assert current["package"] == SHOP
    assert current["activity"].endswith("LoginActivity")
    d.app_stop(SHOP)
    assert d.app_current()["package"] != SHOP


def test_click_by_text_and_missing_element_raises(shop) -> None:  # type: ignore[no-untyped-def]
    import uiautomator2

    shop(text="Sign in").click()
    assert shop(text="New order").wait(timeout=5)
    with pytest.raises(uiautomator2.UiObjectNotFoundError):
        shop(text="missing").click(timeout=0.5)


def test_set_text_and_read_it_back(shop) -> None:  # type: ignore[no-untyped-def]
    user = shop(resourceId="com.example.shop:id/user")
    user.set_text("alice")
    assert user.get_text() == "alice"
    assert user.info["resourceName"] == "com.example.shop:id/user"
    user.clear_text()
    assert user.get_text() == ""


def test_xpath_click_and_dump_parses_as_xml(shop) -> None:  # type: ignore[no-untyped-def]
    shop.xpath('//*[@text="Sign in"]').click()
    assert shop.xpath("New order").wait(timeout=5)
    root = ET.fromstring(shop.dump_hierarchy().encode())
    assert root.tag == "hierarchy"
    texts = {node.get("text") for node in root.iter("node")}
    assert {"New order", "Order 1003"} <= texts


def test_decorview_layers_are_in_the_hierarchy_as_on_a_phone(shop) -> None:  # type: ignore[no-untyped-def]
    content = shop(resourceId="android:id/content")
    assert content.exists
    assert content.info["className"] == "android.widget.FrameLayout"
    assert content.child(text="Sign in").exists
    assert shop(resourceId="android:id/statusBarBackground").info["bounds"] == {
        "left": 0, "top": 0, "right": 1080, "bottom": 84
    }  # fmt: skip
    assert shop.xpath('//*[@resource-id="android:id/content"]//*[@text="Sign in"]').exists
    assert shop.xpath("@android:id/navigationBarBackground").exists
    root = ET.fromstring(shop.dump_hierarchy().encode())
    decor = root.find("node")
    assert decor is not None
    assert (decor.get("resource-id"), decor.get("class")) == ("", "android.widget.FrameLayout")
    assert [n.get("resource-id") for n in decor.findall("node")] == [
        "", "android:id/statusBarBackground", "android:id/navigationBarBackground"
    ]  # fmt: skip


def test_a_switch_click_toggles_checked(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start("com.android.settings", stop=True)
    d(text="Wi-Fi").click()
    switch = d(resourceId="android:id/switch_widget")
    assert switch.info["checkable"] is True
    before = switch.info["checked"]
    switch.click()
    assert switch.info["checked"] is not before
    assert d(className="android.widget.Switch", checked=not before).exists
    assert d.xpath(f'//android.widget.Switch[@checked="{str(not before).lower()}"]').exists


def test_screenshot_has_the_window_size(shop) -> None:  # type: ignore[no-untyped-def]
    image = shop.screenshot()
    assert image.size == shop.window_size()
    assert image.format == "JPEG"  # as the real server sends


def test_press_back_and_swipe(shop) -> None:  # type: ignore[no-untyped-def]
    shop(text="Sign in").click()
    shop(text="New order").click()
    assert shop(resourceId="com.example.shop:id/order").wait(timeout=5)
    shop.press("back")
    assert shop(text="New order").wait(timeout=5)
    shop.swipe(540, 1800, 540, 900, 0.1)
    shop.swipe_ext("up", scale=0.5)
    assert shop.app_current()["package"] == SHOP


def test_send_keys_uses_the_clipboard(shop) -> None:  # type: ignore[no-untyped-def]
    user = shop(resourceId="com.example.shop:id/user")
    user.click()
    shop.send_keys("bob")
    assert user.get_text() == "bob"
    assert shop.clipboard == "bob"


def test_sample_workflow_by_hand(shop) -> None:  # type: ignore[no-untyped-def]
    """Launch the shop, sign in, new order, type, save, see the toast "Saved" and the new row."""
    shop(resourceId="com.example.shop:id/user").set_text("alice")
    shop(resourceId="com.example.shop:id/password").set_text("secret")
    shop(text="Sign in").click()
    shop(text="New order").click(timeout=5)
    shop(resourceId="com.example.shop:id/order").set_text("A-1042")
    shop(text="Save").click()
    assert shop(text="Saved").wait(timeout=5)
    assert shop.toast.get_message(wait_timeout=2) == "Saved"
    assert shop(text="A-1042").exists
    assert shop(text="Order 1003").exists


def test_two_emulators_at_once_one_client_each(emulator_a: Emulator) -> None:
    import uiautomator2

    second = start_emulator(sample_apps(), OUR_PORTS)
    try:

        def drive(serial: str, order: str) -> tuple[str, str]:
            dev = uiautomator2.connect(serial)
            dev.app_start(SHOP, stop=True)
            dev(text="Sign in").click(timeout=5)
            dev(text="New order").click(timeout=5)
            dev(resourceId="com.example.shop:id/order").set_text(order)
            dev(text="Save").click()
            dev(text=order).wait(timeout=5)
            return dev.serial, dev(text=order).get_text()

        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(drive, emulator_a.serial, "A-1")
            b = pool.submit(drive, second.serial, "B-2")
            assert a.result(timeout=60) == (emulator_a.serial, "A-1")
            assert b.result(timeout=60) == (second.serial, "B-2")
        # each device kept its own state
        dev_b = uiautomator2.connect(second.serial)
        assert not dev_b(text="A-1").exists
        assert dev_b.screenshot().size == (1080, 2340)
    finally:
        second.stop()


def test_scroll_to_an_item_below_the_fold(d) -> None:  # type: ignore[no-untyped-def]
    d.app_start("com.example.catalogue", stop=True)
    assert d(scrollable=True).wait(timeout=5)
    assert not d(text="Item 25").exists
    assert d(scrollable=True).scroll.to(text="Item 25")
    d(text="Item 25").click()
    d.press("back")
    assert d(scrollable=True).exists


def test_toast_show_and_orientation(d) -> None:  # type: ignore[no-untyped-def]
    d.toast.show("Hello from the test", 2)
    assert d.toast.get_message(wait_timeout=1) == "Hello from the test"
    d.toast.reset()
    assert d.last_toast is None
    d.set_orientation("natural")
    assert d.orientation == "natural"


def test_server_stops_with_its_stream_and_restarts(d, emulator_a: Emulator) -> None:  # type: ignore[no-untyped-def]
    # `d` launched the server (the first connect of this module), so it holds the app_process stream.
    started = time.monotonic()
    d.stop_uiautomator()  # closes that stream; the client then polls /ping until it fails
    assert time.monotonic() - started < 5
    assert emulator_a.call(lambda device: 9008 not in device.device_ports)
    assert d.info["displayWidth"] == 1080  # the client relaunches the server on the failed call
    assert emulator_a.call(lambda device: 9008 in device.device_ports)


def test_killing_the_server_process_stops_it(d, emulator_a: Emulator) -> None:  # type: ignore[no-untyped-def]
    assert d.info["displayWidth"] == 1080  # the server runs
    rows = [line.split() for line in d.shell("ps -u shell").output.splitlines()[1:]]
    assert {row[0] for row in rows} == {"shell"}  # `-u` selects the user's processes
    servers = [row[1] for row in rows if row[-1] == "app_process"]
    assert len(servers) == 1
    assert d.shell(f"kill {servers[0]}").exit_code == 0
    deadline = time.monotonic() + 5
    while emulator_a.call(lambda device: 9008 in device.device_ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator_a.call(lambda device: 9008 not in device.device_ports)
    assert "app_process" not in d.shell("ps -A").output
    assert d.info["displayWidth"] == 1080  # the client relaunches it on the failed call


def test_adb_keyboard_ime_types_when_selected(shop) -> None:  # type: ignore[no-untyped-def]
    # uiautomator2 installs its AdbKeyboard APK and selects it; with it installed, send_keys,
    # clear_text and send_action go through its broadcasts instead of the clipboard.
    ime = "com.github.uiautomator/.AdbKeyboard"
    try:
        shop.set_input_ime(True)
        assert shop.current_ime() == ime
        assert ime in shop.shell("ime list -s -a").output
        shop(resourceId=f"{SHOP}:id/user").click()
        started = time.monotonic()
        shop.send_keys("héllo wörld")
        shop.send_action("search")  # a broadcast not answered would retry for seconds, then raise
        assert time.monotonic() - started < 1.5
        assert shop(resourceId=f"{SHOP}:id/user").get_text() == "héllo wörld"
        shop.clear_text()
        assert shop(resourceId=f"{SHOP}:id/user").get_text() == ""
        shop.set_input_ime(False)
        assert shop.current_ime().endswith("LatinIME")
        assert "result=0" in shop.shell("am broadcast -a ADB_KEYBOARD_HIDE").output  # nobody listens now
    finally:
        shop.shell("pm uninstall com.github.uiautomator")
    assert shop.current_ime().endswith("LatinIME")
    assert ime not in shop.shell("ime list -s -a").output


def test_child_and_sibling_through_the_client(shop) -> None:  # type: ignore[no-untyped-def]
    shop(text="Sign in").click()
    orders = shop(resourceId="com.example.shop:id/orders")
    assert orders.child(className="android.widget.TextView").get_text() == "Order 1003"
    assert orders.child(className="android.widget.TextView")[2].get_text() == "Order 1001"
    assert orders.child(className="android.widget.TextView").count == 3
    assert shop(text="Order 1001").sibling(text="Order 1002").exists


def test_touch_events_long_click_and_drag(shop) -> None:  # type: ignore[no-untyped-def]
    x, y = shop(text="Sign in").center()
    shop.touch.down(x, y).up(x, y)  # injectInputEvent down + up at one point is a tap
    assert shop(text="New order").wait(timeout=5)
    shop.press("back")
    shop(text="Sign in").long_click(duration=0.2)  # the app model has no long-press actions: a tap
    assert shop(text="New order").wait(timeout=5)
    shop.drag(540, 1500, 540, 900, 0.1)
    shop.swipe_points([(540, 1500), (540, 1200), (540, 900)], 0.1)
    assert shop(text="New order").exists
