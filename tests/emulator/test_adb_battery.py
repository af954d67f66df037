"""The battery and power state as adb shows them, and `dumpsys battery set|unplug|reset` as on a phone."""

from __future__ import annotations

from device_bridge.adb_tracker import parse_health, phone_health
from emulator import Emulator
from tests.emulator.conftest import adb_run


def test_dumpsys_battery_set_unplug_reset(emulator: Emulator) -> None:
    serial = emulator.serial
    dump = adb_run("shell", "dumpsys", "battery", serial=serial).stdout
    assert "  AC powered: true\n" in dump
    assert "  level: 100\n" in dump
    assert "  status: 5\n" in dump
    assert "UPDATES STOPPED" not in dump

    assert adb_run("shell", "dumpsys battery set level 15", serial=serial).returncode == 0
    assert adb_run("shell", "dumpsys battery unplug", serial=serial).returncode == 0
    dump = adb_run("shell", "dumpsys", "battery", serial=serial).stdout
    assert "(UPDATES STOPPED -- use 'reset' to restart)" in dump
    assert "  AC powered: false\n" in dump
    assert "  level: 15\n" in dump
    assert "  status: 3\n" in dump
    assert phone_health(serial) | {"foregroundApp": None} == {
        "battery": 15, "charging": False, "screenOn": True, "foregroundApp": None,
    }  # fmt: skip

    adb_run("shell", "input keyevent POWER", serial=serial)
    assert adb_run("shell", "dumpsys battery set usb 1", serial=serial).returncode == 0
    health = phone_health(serial)
    assert health["charging"] is True
    assert health["screenOn"] is False
    adb_run("shell", "monkey -p com.example.shop -c android.intent.category.LAUNCHER 1", serial=serial)
    assert phone_health(serial)["foregroundApp"] == "com.example.shop"

    bad = adb_run("shell", "dumpsys battery set level lots", serial=serial)
    assert bad.returncode != 0
    assert "Bad value: lots" in bad.stdout + bad.stderr
    assert adb_run("shell", "dumpsys battery reset", serial=serial).returncode == 0
    dump = adb_run("shell", "dumpsys", "battery", serial=serial).stdout
    assert "  level: 100\n" in dump
    assert "UPDATES STOPPED" not in dump


def test_health_read_from_a_real_phones_dumps() -> None:
    # Trimmed from a Pixel 7 on Android 14: the lines the probe keeps (grep) and the battery dump.
    output = (
        "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
        "  Wireless powered: false\n  Dock powered: false\n  Max charging current: 500000\n"
        "  status: 2\n  health: 2\n  present: true\n  level: 43\n  scale: 100\n  voltage: 3871\n"
        "__power__\n  mWakefulness=Asleep\nDisplay Power: state=OFF\n"
        "__activity__\n  topResumedActivity=ActivityRecord{5f1c2a7 u0 com.android.chrome/"
        "com.google.android.apps.chrome.Main t1022}\n"
        "    ResumedActivity: ActivityRecord{5f1c2a7 u0 com.android.chrome/"
        "com.google.android.apps.chrome.Main t1022}\n"
    )
    assert parse_health(output) == {
        "battery": 43, "charging": True, "screenOn": False, "foregroundApp": "com.android.chrome",
    }  # fmt: skip
    assert parse_health("") == {"battery": None, "charging": None, "screenOn": None, "foregroundApp": None}
