"""A real Appium 3 server with the UiAutomator2 driver runs an ordinary client session on the virtual device.

Everything goes over the real protocols: the Python Appium client speaks W3C WebDriver to the
Appium server, which installs its APKs with adb, starts the in-device server with
`am instrument`, forwards to it and proxies the commands.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from appium import webdriver
from appium.options.common.base import AppiumOptions
from appium.webdriver.common.appiumby import AppiumBy
from PIL import Image
from selenium.common.exceptions import InvalidSelectorException, NoSuchElementException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from device_bridge.appium_driver import session_capabilities
from tests.appium.conftest import start_emulator

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def driver(appium_url: str) -> Iterator[webdriver.Remote]:
    emu: Any = start_emulator()
    options = AppiumOptions()
    options.load_capabilities(session_capabilities(emu.serial))
    session = webdriver.Remote(appium_url, options=options)
    try:
        yield session
    finally:
        session.quit()
        emu.stop()


def test_session_reports_the_device(driver: webdriver.Remote) -> None:
    caps = driver.capabilities
    assert caps["deviceApiLevel"] == 34
    assert caps["deviceScreenSize"] == "1080x2340"
    assert driver.get_window_size() == {"width": 1080, "height": 2340}
    assert driver.is_app_installed("com.example.shop")
    assert not driver.is_app_installed("com.example.nothing")


def test_finds_types_clicks_and_reads(driver: webdriver.Remote) -> None:
    driver.terminate_app("com.example.shop")
    driver.activate_app("com.example.shop")
    assert driver.current_package == "com.example.shop"
    assert driver.current_activity == ".LoginActivity"
    source = driver.page_source
    assert "<android.widget.Button" in source
    assert 'resource-id="com.example.shop:id/sign_in"' in source
    # DecorView's layers around the app's views, as on a phone
    content = driver.find_element(AppiumBy.ID, "android:id/content")
    assert content.get_attribute("class") == "android.widget.FrameLayout"
    assert content.find_element(AppiumBy.ACCESSIBILITY_ID, "User").is_displayed()
    bar = driver.find_element(AppiumBy.XPATH, "/hierarchy/android.widget.FrameLayout/android.view.View[1]")
    assert bar.get_attribute("resource-id") == "android:id/statusBarBackground"
    user = driver.find_element(AppiumBy.ACCESSIBILITY_ID, "User")
    user.send_keys("ada")
    assert user.text == "ada"
    user.clear()
    assert user.text == ""
    by_id = driver.find_element(AppiumBy.ID, "sign_in")  # a bare id gets the app's package
    assert by_id.get_attribute("resource-id") == "com.example.shop:id/sign_in"
    assert by_id.rect["width"] > 0
    assert by_id.is_displayed()
    driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'new UiSelector().text("Sign in")').click()
    assert driver.find_element(AppiumBy.XPATH, "//android.widget.Button[@text='New order']").is_enabled()
    assert driver.current_activity == ".OrdersActivity"
    driver.back()
    assert driver.current_activity == ".LoginActivity"


def test_missing_elements_and_bad_selectors_are_w3c_errors(driver: webdriver.Remote) -> None:
    with pytest.raises(NoSuchElementException):
        driver.find_element(AppiumBy.ACCESSIBILITY_ID, "no such thing")
    assert driver.find_elements(AppiumBy.CLASS_NAME, "android.widget.NoSuchWidget") == []
    with pytest.raises(InvalidSelectorException):
        driver.find_element(AppiumBy.XPATH, "//*[")


def test_keys_swipes_and_screenshots(driver: webdriver.Remote) -> None:
    driver.activate_app("com.example.catalogue")
    first = driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'new UiSelector().text("Item 1")')
    assert first.is_displayed()
    driver.swipe(540, 1800, 540, 600, 300)  # W3C touch actions
    with pytest.raises(NoSuchElementException):
        driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'new UiSelector().text("Item 1")')
    scroll = "new UiScrollable(new UiSelector().scrollable(true))"
    far = driver.find_element(
        AppiumBy.ANDROID_UIAUTOMATOR, f'{scroll}.scrollIntoView(new UiSelector().text("Item 55"))'
    )
    assert far.text == "Item 55"
    # Appium's parser puts `new UiSelector().` in front of a bare method chain, arguments too
    assert driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'text("Item 55")').text == "Item 55"
    back = driver.find_element(
        AppiumBy.ANDROID_UIAUTOMATOR, 'UiScrollable(scrollable(true)).scrollIntoView(text("Item 2"));'
    )
    assert back.text == "Item 2"
    image = Image.open(io.BytesIO(base64.b64decode(driver.get_screenshot_as_base64())))
    assert image.size == (1080, 2340)
    driver.press_keycode(3)  # HOME
    assert driver.current_package == "com.google.android.apps.nexuslauncher"


def test_gestures_through_mobile_commands(driver: webdriver.Remote) -> None:
    driver.terminate_app("com.example.catalogue")
    driver.activate_app("com.example.catalogue")
    items = driver.find_element(AppiumBy.ID, "list")
    assert driver.execute_script(
        "mobile: scrollGesture", {"elementId": items.id, "direction": "down", "percent": 1.0}
    )
    with pytest.raises(NoSuchElementException):
        driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'new UiSelector().text("Item 1")')
    driver.execute_script(
        "mobile: swipeGesture", {"elementId": items.id, "direction": "down", "percent": 1.0}
    )
    driver.execute_script(
        "mobile: swipeGesture", {"elementId": items.id, "direction": "down", "percent": 1.0}
    )
    first = driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, 'new UiSelector().text("Item 1")')
    driver.execute_script("mobile: clickGesture", {"elementId": first.id})
    assert driver.current_activity == ".DetailActivity"
    assert driver.find_element(AppiumBy.ID, "name").text == "Item 1"
    driver.back()
    items = driver.find_element(AppiumBy.ID, "list")
    source = driver.page_source
    for pinch in ("mobile: pinchOpenGesture", "mobile: pinchCloseGesture"):  # nothing zooms or scrolls
        assert driver.execute_script(pinch, {"elementId": items.id, "percent": 0.5}) is None
    assert driver.page_source == source
    driver.open_notifications()  # System UI's shade over the app, as the u2 server shows it
    shade_text = "com.android.systemui:id/no_notifications"
    assert driver.find_element(AppiumBy.ID, shade_text).text == "No notifications"
    driver.back()
    assert driver.find_elements(AppiumBy.ID, shade_text) == []
    assert driver.contexts == ["NATIVE_APP"]  # /proc/net/unix lists no WebView devtools socket


def test_key_actions_type_into_the_focused_field(driver: webdriver.Remote) -> None:
    driver.terminate_app("com.example.shop")
    driver.activate_app("com.example.shop")
    user = driver.find_element(AppiumBy.ACCESSIBILITY_ID, "User")
    user.click()  # focus
    ActionChains(driver).send_keys("bob").perform()  # W3C key actions
    assert user.text == "bob"
    ActionChains(driver).send_keys(Keys.BACKSPACE).perform()
    assert user.text == "bo"
    assert driver.switch_to.active_element.get_attribute("resource-id") == "com.example.shop:id/user"


def test_settings_orientation_and_device_facts(driver: webdriver.Remote) -> None:
    driver.update_settings({"waitForIdleTimeout": 50})
    assert driver.get_settings()["waitForIdleTimeout"] == 50
    assert driver.orientation == "PORTRAIT"
    info = driver.execute_script("mobile: deviceInfo")
    assert info["apiVersion"] == "34"
    assert info["realDisplaySize"] == "1080x2340"
    with pytest.raises(WebDriverException, match="PORTRAIT"):
        driver.orientation = "SIDEWAYS"


def test_rotation_turns_the_screen(driver: webdriver.Remote) -> None:
    driver.activate_app("com.example.shop")
    driver.orientation = "LANDSCAPE"
    try:
        assert driver.orientation == "LANDSCAPE"
        assert driver.get_window_size() == {"width": 2340, "height": 1080}
        assert 'rotation="1"' in driver.page_source
    finally:
        driver.orientation = "PORTRAIT"
    assert driver.get_window_size() == {"width": 1080, "height": 2340}


def test_lock_and_unlock_the_screen(driver: webdriver.Remote) -> None:
    # The driver reads the screen and keyguard state from `dumpsys window` (and `dumpsys power`).
    assert driver.is_locked() is False
    driver.lock()  # POWER, then it waits until the dump says the screen is off
    assert driver.is_locked() is True
    driver.unlock()
    assert driver.is_locked() is False
    assert driver.find_element(AppiumBy.XPATH, "//*").is_displayed()
