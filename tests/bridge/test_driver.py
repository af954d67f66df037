"""`U2Device` against the emulator, through Debian's adb and the real uiautomator2: every Device method."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from device_bridge.driver import U2Device
from device_bridge.errors import DeviceBusyError
from interpreter import matcher
from interpreter.errors import AppNotInstalledError
from interpreter.hierarchy import UiNode
from interpreter.keys import KEYS
from interpreter.matcher import Selector

pytestmark = pytest.mark.emulator

SHOP = "com.example.shop"
CATALOGUE = "com.example.catalogue"


@pytest.fixture(scope="module")
def lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bridge-locks")


@pytest.fixture(scope="module")
def device(sample_emulator: Any, lock_dir: Path) -> Iterator[U2Device]:
    with U2Device(sample_emulator.serial, lock_dir=lock_dir) as dev:
        yield dev


def find(root: UiNode, **selector: Any) -> UiNode | None:
    return matcher.find(root, Selector.from_dict(selector))


def texts(root: UiNode) -> list[str]:
    return [node.text for node in root.walk() if node.text]


def test_screen_size_and_installed_packages(device: U2Device) -> None:
    assert device.screen_size() == (1080, 2340)
    assert {SHOP, CATALOGUE, "com.bank.app"} <= device.installed_packages()


def test_launch_foreground_hierarchy_type_and_tap(device: U2Device) -> None:
    device.launch_app(SHOP, stop_first=True)
    assert device.foreground_package() == SHOP
    root = device.hierarchy()
    user = find(root, resourceId=f"{SHOP}:id/user")
    assert user is not None
    assert user.editable
    device.tap(*user.bounds.center)
    device.input_text("alice")
    user = find(device.hierarchy(), resourceId=f"{SHOP}:id/user")
    assert user is not None
    assert user.text == "alice"
    device.input_text("bob", clear=True)
    user = find(device.hierarchy(), resourceId=f"{SHOP}:id/user")
    assert user is not None
    assert user.text == "bob"
    sign_in = find(device.hierarchy(), text="Sign in")
    assert sign_in is not None
    device.tap(*sign_in.bounds.center)
    assert find(device.hierarchy(), text="New order") is not None


def test_a_look_right_after_a_look_is_answered_without_a_dump_and_only_once(
    device: U2Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    device.launch_app(SHOP, stop_first=True)
    sent: list[str] = []
    rpc = device._rpc

    def seen(method: str, *params: Any) -> Any:
        sent.append(method)
        return rpc(method, *params)

    monkeypatch.setattr(device, "_rpc", seen)
    first = device.hierarchy()
    assert device.hierarchy() is first  # the next look: that dump's tree, no dump of its own
    device.hierarchy()  # the one after it (a wait's next poll) dumps the screen again
    assert sent == ["dumpWindowHierarchy", "dumpWindowHierarchy"]
    sign_in = find(device.hierarchy(), text="Sign in")
    assert sign_in is not None
    device.tap(*sign_in.bounds.center)  # a change: the next look dumps the screen it made
    assert find(device.hierarchy(), text="New order") is not None
    assert sent[-2:] == ["click", "dumpWindowHierarchy"]
    time.sleep(0.1)  # a look a while later dumps the screen too
    device.hierarchy()
    assert sent.count("dumpWindowHierarchy") == 4


def test_press_key_back_and_home(device: U2Device) -> None:
    device.launch_app(SHOP, stop_first=True)
    sign_in = find(device.hierarchy(), text="Sign in")
    assert sign_in is not None
    device.tap(*sign_in.bounds.center)
    assert find(device.hierarchy(), text="New order") is not None
    device.press_key("back")
    assert find(device.hierarchy(), text="Sign in") is not None
    device.press_key("home")
    assert device.foreground_package() != SHOP
    for key in KEYS:
        device.press_key(key)  # every key the workflow format names is pressed by its code
    with pytest.raises(ValueError, match="unknown key 'f13'"):
        device.press_key("f13")


def test_swipe_scrolls_a_list(device: U2Device) -> None:
    device.launch_app(CATALOGUE, stop_first=True)
    before = [t for t in texts(device.hierarchy()) if t.startswith("Item ")]
    assert "Item 1" in before
    width, height = device.screen_size()
    device.swipe(width // 2, height * 3 // 4, width // 2, height // 4, 300)
    after = [t for t in texts(device.hierarchy()) if t.startswith("Item ")]
    assert "Item 1" not in after
    assert max(int(t.split()[1]) for t in after) > max(int(t.split()[1]) for t in before)


def test_stop_app(device: U2Device) -> None:
    device.launch_app(SHOP)
    assert device.foreground_package() == SHOP
    device.stop_app(SHOP)
    assert device.foreground_package() != SHOP
    device.stop_app(SHOP)  # stopping a stopped app is no error


def test_the_app_in_front_is_one_shell_and_uiautomator2s_way_stays_for_what_it_cannot_tell(
    device: U2Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asked before every UI step while a denylist is set: one `dumpsys window displays`, not the
    # three shells of uiautomator2's app_current() on an Android 13+ phone (the virtual one is 14).
    device.launch_app(SHOP, stop_first=True)
    client = device._u2
    shells: list[list[str]] = []
    real_shell, real_current = client.shell, client.app_current

    def shell(command: list[str], **kwargs: Any) -> Any:
        shells.append(command)
        return real_shell(command, **kwargs)

    currents: list[dict[str, Any]] = []

    def app_current() -> dict[str, Any]:
        currents.append(real_current())
        return currents[-1]

    monkeypatch.setattr(client, "shell", shell)
    monkeypatch.setattr(client, "app_current", app_current)
    assert device.foreground_package() == SHOP
    assert device.foreground_activity() == f"{SHOP}.LoginActivity"
    assert (shells, currents) == ([["dumpsys", "window", "displays"]] * 2, [])

    # No app window in focus (a system window, or an older Android without the line): its way.
    def unfocused(command: list[str], **kwargs: Any) -> Any:
        shells.append(command)
        if command == ["dumpsys", "window", "displays"]:
            return type("Output", (), {"output": "  mCurrentFocus=Window{1f2e3d u0 NotificationShade}\n"})()
        return real_shell(command, **kwargs)

    monkeypatch.setattr(client, "shell", unfocused)
    assert device.foreground_package() == SHOP
    assert [current["package"] for current in currents] == [SHOP]


def test_launch_missing_app_raises_app_not_installed(device: U2Device) -> None:
    with pytest.raises(AppNotInstalledError, match="app not installed: com.example.nothere"):
        device.launch_app("com.example.nothere")


def test_screenshot_is_a_png_of_the_screen(device: U2Device) -> None:
    device.launch_app(SHOP, stop_first=True)
    shot = device.screenshot()
    assert shot.content_type == "image/png"
    assert shot.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(shot.data)).size == (1080, 2340)
    assert "<hierarchy" in device.hierarchy_xml()


def test_second_bridge_on_the_same_serial_is_refused(
    device: U2Device, lock_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(DeviceBusyError, match=f"device {device.serial} is already served by another bridge"):
        U2Device(device.serial, lock_dir=lock_dir)
    # another process is refused as well, with the same words, before it touches the phone
    workflow = tmp_path / "wf.json"
    workflow.write_text(
        '{"schemaVersion": 1, "name": "w", "start": "a", "nodes": [{"id": "a", "kind": "action.wait", '
        '"params": {"ms": 1}}]}'
    )
    # The other bridge has a state dir of its own whose locks folder is ours: the same lock files.
    other_state = tmp_path / "other-state"
    other_state.mkdir()
    (other_state / "locks").symlink_to(lock_dir)
    env = {**os.environ, "PHONEFLOW_BRIDGE_STATE_DIR": str(other_state)}
    proc = subprocess.run(
        [sys.executable, "-m", "device_bridge", "exec", str(workflow), "--serial", device.serial],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "already served by another bridge" in proc.stderr


def test_bridge_exec_prints_the_trace(sample_emulator: Any, tmp_path: Path) -> None:
    workflow = tmp_path / "sign-in.json"
    workflow.write_text(json.dumps({
        "schemaVersion": 1, "name": "sign in", "targetPackages": [SHOP], "start": "open",
        "inputs": {"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]},
        "nodes": [
            {"id": "open", "kind": "action.launchApp", "params": {"package": SHOP, "stopFirst": True},
             "next": "user"},
            {"id": "user", "kind": "action.typeText",
             "params": {"text": "{{inputs.user}}", "selector": {"resourceId": f"{SHOP}:id/user"}},
             "next": "go"},
            {"id": "go", "kind": "action.tapByText", "params": {"text": "Sign in"}, "next": "orders"},
            {"id": "orders", "kind": "action.waitForText",
             "params": {"text": "New order", "timeoutMs": 2000}},
        ],
    }))  # fmt: skip
    command = [
        sys.executable, "-m", "device_bridge", "exec", str(workflow), "--serial", sample_emulator.serial,
        "--inputs", '{"user": "carol"}', "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    run = json.loads(as_json.stdout)
    assert run["status"] == "success"
    assert [(e["nodeId"], e["outcome"]) for e in run["trace"]] == [
        ("open", "ok"),
        ("user", "ok"),
        ("go", "ok"),
        ("orders", "ok"),
    ]
    table = subprocess.run(
        [*command, "--inputs", "{}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert table.returncode == 1  # the inputs do not fit the workflow's schema: the run fails at once
    assert "failed" in table.stdout
