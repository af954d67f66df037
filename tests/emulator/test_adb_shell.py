"""The virtual device's shell as adb, adbutils and uiautomator2 use it."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import subprocess

import adbutils
import pytest
from PIL import Image

from emulator import Emulator
from interpreter.hierarchy import from_android_xml
from tests.emulator.conftest import ADB, adb_run

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

SHOP = "com.example.shop"


@pytest.fixture
def dev(emulator: Emulator) -> adbutils.AdbDevice:
    return adbutils.AdbClient(host="127.0.0.1", port=5037).device(emulator.serial)


def test_getprop_through_the_adb_cli(emulator: Emulator) -> None:
    result = adb_run("shell", "getprop", "ro.build.version.sdk", serial=emulator.serial)
    assert (result.returncode, result.stdout) == (0, "34\n")
    listing = adb_run("shell", "getprop", serial=emulator.serial).stdout
    assert "[ro.build.version.release]: [14]" in listing
    assert "[ro.product.cpu.abi]: [x86_64]" in listing


def test_exit_codes_reach_the_adb_cli(emulator: Emulator) -> None:
    assert adb_run("shell", "false", serial=emulator.serial).returncode == 1
    assert adb_run("shell", "exit 3", serial=emulator.serial).returncode == 3
    assert adb_run("shell", "false; echo $?", serial=emulator.serial).stdout == "1\n"
    assert adb_run("shell", "true && echo yes || echo no", serial=emulator.serial).stdout == "yes\n"
    missing = adb_run("shell", "frobnicate", "--now", serial=emulator.serial)
    assert missing.returncode == 127
    assert missing.stderr == "/system/bin/sh: frobnicate: inaccessible or not found\n"


def test_shell_v1_and_v2_through_adbutils(dev: adbutils.AdbDevice) -> None:
    v1 = dev.shell2("echo out; ls /nowhere")  # v1 with `; echo X4EXIT:$?` appended
    assert v1.returncode == 1
    assert v1.output == "out\nls: /nowhere: No such file or directory\n"
    v2 = dev.shell2("echo out; echo err >&2; exit 4", v2=True)
    assert (v2.returncode, v2.stdout, v2.stderr) == (4, "out\n", "err\n")


def test_quotes_variables_and_assignments(dev: adbutils.AdbDevice) -> None:
    assert dev.shell("""echo 'a  $HOME' "b $HOME" c\\ d""") == "a  $HOME b / c d"
    assert dev.shell("X=1; echo $X ${X}x; Y=2 printenv_missing; echo $?").splitlines()[-1] == "127"
    assert dev.shell('echo "$(not supported)" | wc -l') == "1"
    assert (
        dev.shell("echo one > /data/local/tmp/f; echo two >> /data/local/tmp/f; cat /data/local/tmp/f")
        == "one\ntwo"
    )
    assert dev.shell("cat /data/local/tmp/f | grep -c o") == "2"
    assert dev.shell("ls /data/local/tmp/*") == "/data/local/tmp/f"
    assert dev.shell("ls /nowhere 2>/dev/null; echo $?") == "1"
    assert dev.shell("ls /nowhere 2>&1 | grep -c 'No such'") == "1"


def test_files_and_checksums(dev: adbutils.AdbDevice) -> None:
    dev.shell("mkdir -p /sdcard/a/b && echo -n hello > /sdcard/a/b/c.txt")
    digest = hashlib.md5(b"hello").hexdigest()
    assert dev.shell("md5sum /sdcard/a/b/c.txt") == f"{digest}  /sdcard/a/b/c.txt"
    assert dev.shell("toybox md5sum /sdcard/a/b/c.txt") == f"{digest}  /sdcard/a/b/c.txt"
    assert "No such file or directory" in dev.shell("toybox md5sum /data/local/tmp/u2.jar")
    assert dev.shell("ls /sdcard/a/b") == "c.txt"
    assert re.fullmatch(
        r"-rw-rw-rw- 1 shell shell +5 \S+ \S+ c\.txt", dev.shell("ls -l /sdcard/a/b").splitlines()[1]
    )
    assert dev.shell2("rm /sdcard/a").returncode == 1
    assert dev.shell2("rm -r /sdcard/a && ls /sdcard/a").returncode == 1


def test_packages_and_activities(dev: adbutils.AdbDevice) -> None:
    everything = dev.shell("pm list packages").splitlines()
    assert len(everything) == len(set(everything))
    third_party = dev.list_packages(["-3"])
    assert SHOP in third_party
    assert "android" not in third_party
    assert "com.android.settings" not in third_party  # the model's Settings is a system app
    assert "com.android.settings" in dev.list_packages(["-s"])
    assert "android" in dev.list_packages()
    assert dev.shell(f"pm path {SHOP}").startswith("package:/data/app/")
    assert dev.shell2("pm path com.not.there").returncode == 1

    monkey = dev.shell2(f"monkey -p {SHOP} -c android.intent.category.LAUNCHER 1")
    assert monkey.returncode == 0
    assert "Events injected: 1" in monkey.output
    current = dev.app_current()  # Android 14: `dumpsys activity activities`, then `dumpsys activity top`
    assert (current.package, current.activity) == (SHOP, ".LoginActivity")
    assert current.pid > 0
    assert "mResumedActivity: ActivityRecord{" in dev.shell("dumpsys activity activities")
    assert re.search(rf"ACTIVITY {SHOP}/\.LoginActivity \w+ pid=\d+", dev.shell("dumpsys activity top"))

    ps_lines = dev.shell("ps -A").splitlines()
    shop_row = next(line.split() for line in ps_lines if line.endswith(SHOP))
    assert len(shop_row) >= 9
    assert shop_row[1].isdigit()

    dev.shell(f"am force-stop {SHOP}")
    assert dev.app_current().package != SHOP
    assert not any(line.endswith(SHOP) for line in dev.shell("ps -A").splitlines())

    started = dev.shell2(f"am start -W -n {SHOP}/.LoginActivity")
    assert "Status: ok" in started.output
    assert "LaunchState: COLD" in started.output
    assert dev.app_current().package == SHOP
    assert dev.shell2("monkey -p com.not.there -c android.intent.category.LAUNCHER 1").returncode == 252
    assert dev.shell2("am start -n com.not.there/.Main").returncode == 1


def test_input_drives_the_app(emulator: Emulator, dev: adbutils.AdbDevice) -> None:
    dev.app_start(SHOP)
    root = from_android_xml(dev.dump_hierarchy())  # `uiautomator dump` + sync pull
    user = next(n for n in root.walk() if n.resource_id == f"{SHOP}:id/user")
    sign_in = next(n for n in root.walk() if n.text == "Sign in")
    dev.shell(f"input tap {user.bounds.center[0]} {user.bounds.center[1]}")
    dev.shell("input text alice%sb")
    texts = [n.text for n in from_android_xml(dev.dump_hierarchy()).walk()]
    assert "alice b" in texts
    dev.shell(f"input touchscreen tap {sign_in.bounds.center[0]} {sign_in.bounds.center[1]}")
    assert emulator.call(lambda d: d.phone.foreground_activity()) == "com.example.shop.OrdersActivity"
    dev.shell("input keyevent KEYCODE_BACK")
    assert emulator.call(lambda d: d.phone.foreground_activity()) == "com.example.shop.LoginActivity"
    dev.shell("input keyevent 3")
    assert dev.app_current().package == "com.google.android.apps.nexuslauncher"


def test_screen_facts(dev: adbutils.AdbDevice) -> None:
    assert dev.shell("wm size") == "Physical size: 1080x2340"
    assert dev.shell("wm density") == "Physical density: 420"
    assert dev.window_size() == (1080, 2340)  # `wm size` and `dumpsys display` orientation
    assert "orientation=0" in dev.shell("dumpsys display")
    assert re.search(r"Display (\d+) \(HWC display 0\)", dev.shell("dumpsys SurfaceFlinger --display-id"))
    assert dev.shell("uiautomator dump") == "UI hierchary dumped to: /sdcard/window_dump.xml"
    assert dev.shell("ime list -s -a").endswith("LatinIME")
    assert dev.shell("settings get secure default_input_method").endswith("LatinIME")
    assert dev.shell("settings get system no_such_key") == "null"


def test_screencap_is_a_png_of_the_screen(emulator: Emulator, dev: adbutils.AdbDevice) -> None:
    png = dev.shell("screencap -p", encoding=None)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (1080, 2340))
    assert dev.screenshot().size == (1080, 2340)  # adbutils: SurfaceFlinger display id + screencap -d
    adb_run("shell", "screencap /sdcard/s.png", serial=emulator.serial)
    assert dev.sync.read_bytes("/sdcard/s.png")[:4] == b"\x89PNG"
    raw = dev.shell("screencap", encoding=None)  # Android's raw format: a 16-byte header, then RGBA
    width, height, pixel_format, _ = struct.unpack("<4I", raw[:16])
    assert (width, height, pixel_format, len(raw)) == (1080, 2340, 1, 16 + 1080 * 2340 * 4)
    assert dev.shell("uiautomator dump /dev/tty").startswith("<?xml")


def test_shell_without_a_command_reads_a_script_from_stdin(emulator: Emulator) -> None:
    result = subprocess.run(
        [ADB, "-s", emulator.serial, "shell"],
        input="echo hi\nX=5; echo $X\nexit 3\necho never\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.stdout, result.returncode) == ("hi\n5\n", 3)


def test_subshells_and_what_the_device_cannot_do(dev: adbutils.AdbDevice) -> None:
    assert dev.shell2("sh -c 'echo a; exit 2'; echo $?").output == "a\n2\n"
    missing = dev.shell2("pm install /data/local/tmp/app.apk")
    assert missing.returncode == 1
    assert "INSTALL_FAILED_INVALID_URI" in missing.output
    dev.shell2("echo not-a-zip > /data/local/tmp/app.apk")
    install = dev.shell2("pm install /data/local/tmp/app.apk")
    assert install.returncode == 1
    assert "INSTALL_PARSE_FAILED_NOT_APK" in install.output
    assert "is not an APK" in install.output
    assert dev.shell2("logcat -d").returncode == 0


def test_adb_logcat_dumps_and_ends(emulator: Emulator) -> None:
    result = adb_run("logcat", "-d", serial=emulator.serial)  # `export ...; exec logcat -d`
    assert result.returncode == 0
    assert result.stdout.startswith("--------- beginning of main\n")
    assert result.stdout.splitlines()[1].endswith(" I ActivityManager: System now ready")  # threadtime


# adbutils' `framebuffer()` leaves its adb connection for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_logcat_ps_framebuffer_reverse_and_push_as_adbutils_uses_them(dev: adbutils.AdbDevice) -> None:
    # `logcat --clear` ends; a following logcat gets `log`'s line and keeps producing lines (a
    # client reading line by line must be able to stop), and `-d` dumps and ends.
    log_path = io.StringIO()
    follow = dev.shell("logcat -v time", stream=True)
    reader = follow.conn.makefile("r", encoding="utf-8")
    assert dev.shell("logcat --clear; echo $?") == "0"
    dev.shell(["log", "-p", "w", "-t", "PeerTag", "hello there"])
    lines = [reader.readline() for _ in range(3)]
    log_path.write("".join(lines))
    assert re.search(r"W/PeerTag *\( *\d+\): hello there", log_path.getvalue()), lines
    assert reader.readline().strip()  # another line within the heartbeat, not a hang
    follow.close()
    dumped = dev.shell("logcat -d -s PeerTag:W")
    assert dumped.splitlines()[1:] == [line for line in dumped.splitlines()[1:] if "PeerTag" in line]
    assert "hello there" in dumped
    # Settings a phone has out of the box, as adbutils' brightness and rotation read them.
    assert dev.brightness_value == 102
    assert dev.shell("settings get system accelerometer_rotation") == "0"
    # ps selections
    shell_rows = dev.shell("ps -u shell").splitlines()[1:]
    assert shell_rows
    assert all(row.split()[0] == "shell" for row in shell_rows)
    assert [row.split()[1] for row in dev.shell("ps -p 1").splitlines()[1:]] == ["1"]
    # framebuffer: the screen as RGBA
    image = dev.framebuffer()
    assert (image.mode, image.size) == ("RGBA", (1080, 2340))
    assert image.convert("RGB").getpixel((540, 1200)) == dev.screenshot().getpixel((540, 1200))
    # reverse forwarding: listeners are installed, listed and removed as adbd keeps them
    dev.reverse_remove_all()
    assert dev.reverse_list() == []
    dev.reverse("tcp:12345", "tcp:4000")
    dev.reverse("localabstract:peer", "tcp:4001")
    assert [(item.remote, item.local) for item in dev.reverse_list()] == [
        ("tcp:12345", "tcp:4000"), ("localabstract:peer", "tcp:4001")
    ]  # fmt: skip
    with pytest.raises(adbutils.AdbError, match="cannot rebind existing socket"):
        dev.reverse("tcp:12345", "tcp:4002", norebind=True)
    dev.reverse("tcp:12345", "tcp:4002")  # re-pointed where it was
    listed = adb_run("reverse", "--list", serial=dev.serial)
    assert re.fullmatch(
        r"host-\d+ tcp:12345 tcp:4002\nhost-\d+ localabstract:peer tcp:4001\n\n", listed.stdout
    )
    added = adb_run("reverse", "tcp:0", "tcp:4003", serial=dev.serial)
    assert added.returncode == 0, added
    assert f"tcp:{int(added.stdout)} tcp:4003" in adb_run("reverse", "--list", serial=dev.serial).stdout
    dev.reverse_remove("tcp:12345")
    with pytest.raises(adbutils.AdbError, match="listener 'tcp:12345' not found"):
        dev.reverse_remove("tcp:12345")
    assert adb_run("reverse", "--remove-all", serial=dev.serial).returncode == 0
    assert dev.reverse_list() == []
    # pushing where the shell user may not write fails as on a phone
    with pytest.raises(adbutils.AdbError, match="FAIL"):  # adbutils reports the sync answer's id
        dev.sync.push(b"x", "/system/x.txt")
    pushed = adb_run("push", __file__, "/system/x.txt", serial=dev.serial)
    assert pushed.returncode == 1
    assert "remote couldn't create file: Read-only file system" in pushed.stdout + pushed.stderr
