"""`VirtualDevice`: the state of one virtual Android device, shared by every adb session to it.

What other parts of the emulator use (all on the device's asyncio loop, never from another thread):

- `serial` (`emulator-5554`), `console_port`, `adb_port` (console port + 1)
- `phone: PhoneState` — the running app model (foreground app, hierarchy, taps, text, keys, toasts, clipboard)
- `props: dict[str, str]` — the `getprop` set (`ro.build.version.sdk` = "34", `ro.product.model`, ...)
- `fs: FileSystem` — the in-memory filesystem (`/data/local/tmp`, `/sdcard`)
- `apks: dict[str, ApkInfo]` — packages installed from APKs (`adb install`): recorded from their
  manifests, they have no screens; `install_apk`, `uninstall_apk`, `is_installed`, `start_apk_process`
- `instruments: dict[str, Instrumented]` — running `am instrument` processes by target package
- `device_ports: dict[int, int]` — device TCP port → host port of the in-device server behind it;
  `map_port`/`unmap_port` change it, and the adb `tcp:PORT` service pipes to it
- `u2_server(port)` — an async context manager that runs the uiautomator2 server
  (`emulator.u2server.U2Server`) with `port` mapped while the block runs
- `display_size()` → (1080, 2340), `density` → 420
- `screen_on`, `press_key(name)` — the power state that `input keyevent POWER|SLEEP|WAKEUP`,
  the uiautomator2 server's `wakeUp`/`sleep`, `dumpsys power` and `deviceInfo.screenOn` share
- `battery: Battery` — level and power sources: `dumpsys battery [set|unplug|reset]`, Appium's battery_info
- `connected: asyncio.Event` — set while at least one adb transport is connected
- `reboot()` — drop every transport and start the phone afresh (what `adb reboot` does)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from emulator import properties
from emulator.android_commands import IME_ID
from emulator.apk import ApkInfo, read_apk
from emulator.battery import Battery
from emulator.faults import Faults
from emulator.filesystem import FileSystem
from emulator.logcat import LogBuffer
from emulator.reverse import ReverseListeners
from emulator.shell_tools import add_proc_files
from emulator.transport import AdbSession, Handler
from interpreter.appmodel import LAUNCHER_PACKAGE, SYSTEM_PACKAGES, AppModel, PhoneState

log = logging.getLogger(__name__)

FEATURES = ("shell_v2", "cmd")
_SYSTEM_PROCESSES = (
    ("root", 1, 0, "init"),
    ("root", 2, 0, "[kthreadd]"),
    ("logd", 182, 1, "logd"),
    ("system", 215, 1, "servicemanager"),
    ("root", 301, 1, "zygote64"),
    ("system", 339, 1, "surfaceflinger"),
    ("shell", 402, 1, "adbd"),
    ("system", 598, 301, "system_server"),
    ("u0_a115", 812, 301, "com.android.systemui"),
    ("u0_a125", 1030, 301, "com.google.android.inputmethod.latin"),
)


class VirtualDevice:
    """One virtual phone: properties, filesystem, the app model's running state and in-device servers."""

    def __init__(self, apps: AppModel, console_port: int = 5554) -> None:
        self.console_port = console_port
        self.adb_port = console_port + 1
        self.serial = f"emulator-{console_port}"
        self.props: dict[str, str] = properties.default_properties(console_port)
        self.fs = FileSystem()
        add_proc_files(self.fs)
        self.apps = apps
        self.phone = PhoneState(apps)
        self.faults = Faults()
        self.system_packages: tuple[str, ...] = SYSTEM_PACKAGES
        self.device_ports: dict[int, int] = {}
        self.settings: dict[str, dict[str, str]] = {
            "secure": {
                "default_input_method": IME_ID,
                "android_id": f"{0x5EED0000 + console_port:016x}",
            },
            "system": {
                "screen_off_timeout": "2147483647",
                "font_scale": "1.0",
                "user_rotation": "0",
                "accelerometer_rotation": "0",
                "screen_brightness": "102",
                "screen_brightness_mode": "0",
                "haptic_feedback_enabled": "1",
                "sound_effects_enabled": "1",
                "volume_music": "5",
            },
            "global": {
                "adb_enabled": "1",
                "airplane_mode_on": "0",
                "auto_time": "1",
                "bluetooth_on": "0",
                "device_provisioned": "1",
                "wifi_on": "1",
                "mobile_data": "1",
                "window_animation_scale": "1.0",
                "transition_animation_scale": "1.0",
                "animator_duration_scale": "1.0",
                "development_settings_enabled": "1",
                "stay_on_while_plugged_in": "7",
            },
        }
        self.density = properties.DENSITY
        self.enabled_imes: set[str] = {IME_ID}  # `ime enable|disable`; the selected one is a secure setting
        self.screen_on = True  # `input keyevent POWER|SLEEP|WAKEUP`, the u2 server's wakeUp/sleep
        self.battery = Battery()  # `dumpsys battery` (and `set`, `unplug`, `reset`), Appium's battery_info
        self.log = LogBuffer()  # `log` writes, `logcat` reads
        self.sessions: set[AdbSession] = set()
        self.reverse_listeners = ReverseListeners()  # `adb reverse`, per transport
        self.connected = asyncio.Event()
        self._next_pid = 4000
        self._app_pids: dict[str, int] = {}
        self._task_ids: dict[str, int] = {}
        # Running shell commands that take signals (`kill`, `pkill`): `screenrecord`, the
        # uiautomator2 server's `app_process`, by pid.
        self.signalable: dict[int, Signalable] = {}
        self.apks: dict[str, ApkInfo] = {}
        self._apk_pids: dict[str, int] = {}
        self.instruments: dict[str, Instrumented] = {}
        self.background_tasks: set[asyncio.Task[None]] = set()

    # -- the adb side ----------------------------------------------------------------------
    def banner(self) -> bytes:
        """The CNXN payload; `adb devices -l` shows product, model and device from it."""
        props = ";".join(
            f"{key}={self.props[key]}" for key in ("ro.product.name", "ro.product.model", "ro.product.device")
        )
        return f"device::{props};features={','.join(FEATURES)}".encode()

    async def open_service(self, name: str) -> Handler | None:
        from emulator.services import open_service  # services import the shell, which names this class

        return await open_service(self, name)

    def session_started(self, session: AdbSession) -> None:
        self.sessions.add(session)
        self.connected.set()
        log.info("%s: adb transport from %s connected", self.serial, session.peer)

    def session_ended(self, session: AdbSession) -> None:
        self.sessions.discard(session)
        self.reverse_listeners.drop(session)
        if not self.sessions:
            self.connected.clear()
        log.info("%s: adb transport from %s closed", self.serial, session.peer)

    def reboot(self) -> None:
        """`adb reboot`: every transport drops, apps and in-device servers stop, the files stay.

        The adb server reconnects on its own (it retries the port, and the device announces
        itself again), so `adb wait-for-device` returns once it is back.
        """
        for session in list(self.sessions):
            session.writer.close()
        self.phone = PhoneState(self.apps)
        self.reverse_listeners.clear()
        for instrumented in self.instruments.values():
            instrumented.stop()
        self._apk_pids.clear()
        self._app_pids.clear()
        self._task_ids.clear()

    # -- packages installed from APKs ---------------------------------------------------------
    def is_installed(self, package: str) -> bool:
        """An app of the model, a package installed from an APK, or a system package."""
        return self.phone.is_installed(package) or package in self.apks or package in self.system_packages

    def install_apk(self, data: bytes, source: str) -> ApkInfo:
        """Record the APK's package as installed (replacing an older record). Raises `ApkError`."""
        info = read_apk(data, source)
        if self.phone.is_installed(info.package) or info.package in self.system_packages:
            raise ApkReplaceError(info.package)
        self.stop_package(info.package)
        self.apks[info.package] = info
        return info

    def uninstall_apk(self, package: str) -> bool:
        if package not in self.apks:
            return False
        self.stop_package(package)
        del self.apks[package]
        # Its input methods go; the selected one falls back to the system keyboard, as on Android.
        self.enabled_imes = {ime for ime in self.enabled_imes if not ime.startswith(package + "/")}
        if self.settings["secure"].get("default_input_method", "").startswith(package + "/"):
            self.settings["secure"]["default_input_method"] = IME_ID
        return True

    def start_apk_process(self, package: str) -> None:
        """An APK package was started (`am start`, `monkey`): it runs in the background, off screen."""
        if package not in self._apk_pids:
            self._apk_pids[package] = self.allocate_pid()

    def apk_pid(self, package: str) -> int | None:
        """The pid of a running APK package, or None when it is not running."""
        return self._apk_pids.get(package)

    def stop_package(self, package: str) -> None:
        """`am force-stop`: the app of the model, the APK's process, and instrumentations of or on it."""
        self.phone.stop(package)
        self._app_pids.pop(package, None)  # its next start is a new process
        self._apk_pids.pop(package, None)
        for instrumented in list(self.instruments.values()):
            if package in (instrumented.package, instrumented.target):
                instrumented.stop()

    # -- in-device servers --------------------------------------------------------------------
    def map_port(self, device_port: int, host_port: int) -> None:
        self.device_ports[device_port] = host_port

    def unmap_port(self, device_port: int, host_port: int | None = None) -> None:
        if host_port is None or self.device_ports.get(device_port) == host_port:
            self.device_ports.pop(device_port, None)

    @contextlib.asynccontextmanager
    async def u2_server(self, device_port: int = 9008) -> AsyncIterator[JavaProcess]:
        """Run a uiautomator2 server reachable at `device_port` for the duration of the block.

        Its `app_process` is listed by `ps` and takes signals: `kill PID` sets the yielded
        process's `ended`, and the block's owner then ends it (as the JVM exits)."""
        from emulator.u2server import U2Server  # H4b's module; imported late so adb works without it

        server = U2Server(self)
        host_port = await server.start()
        self.map_port(device_port, host_port)
        process = JavaProcess(self.allocate_pid())
        self.signalable[process.pid] = process
        try:
            yield process
        finally:
            self.unmap_port(device_port, host_port)
            self.signalable.pop(process.pid, None)
            await server.stop()

    # -- device state shared by the shell, the in-device servers and `dumpsys` ----------------
    def press_key(self, name: str) -> None:
        """A key press by its `PhoneState` name: `power`, `sleep` and `wakeup` switch the screen,
        other keys go to the app in front."""
        if name == "power":
            self.screen_on = not self.screen_on
        elif name in ("sleep", "wakeup"):
            self.screen_on = name == "wakeup"
        else:
            self.phone.press_key(name)

    # -- what the shell reports ----------------------------------------------------------------
    def display_size(self) -> tuple[int, int]:
        return self.phone.width, self.phone.height

    def allocate_pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    def app_pid(self, package: str) -> int:
        """A stable pid for a running app (a new one after it was stopped and started again)."""
        if package == LAUNCHER_PACKAGE:
            return 1210
        running = set(self.phone.running_packages())
        for gone in [p for p in self._app_pids if p not in running]:
            del self._app_pids[gone]
        if package not in self._app_pids:
            self._app_pids[package] = self.allocate_pid()
        return self._app_pids[package]

    def app_uid(self, package: str) -> int:
        """The app's uid (10000 + N, shown as `u0_aN`): fixed per package, as an install gives it."""
        if package == LAUNCHER_PACKAGE:
            return 10135
        if package in self.apks:
            return 10300 + list(self.apks).index(package)
        packages = self.phone.installed_packages()
        return 10180 + (packages.index(package) if package in packages else len(packages))

    def task_id(self, package: str) -> int:
        return self._task_ids.setdefault(package, 11 + len(self._task_ids))

    def processes(self) -> list[tuple[str, int, int, str]]:
        """(user, pid, ppid, name) for `ps -A`: system processes, the launcher, running apps, servers."""
        rows = list(_SYSTEM_PROCESSES)
        rows.append(("u0_a135", self.app_pid(LAUNCHER_PACKAGE), 301, LAUNCHER_PACKAGE))
        for package in self.phone.running_packages():
            rows.append((f"u0_a{self.app_uid(package) - 10000}", self.app_pid(package), 301, package))
        rows.extend(("shell", pid, 402, process.name) for pid, process in self.signalable.items())
        for package, pid in self._apk_pids.items():
            rows.append((f"u0_a{self.app_uid(package) - 10000}", pid, 301, package))
        for index, instrumented in enumerate(self.instruments.values()):
            rows.append((f"u0_a{400 + index}", instrumented.pid, 301, instrumented.target))
        return rows


class Signalable(Protocol):
    """A process of the shell that a signal reaches (`kill -2 PID`)."""

    name: str

    def signal(self, signum: int) -> None: ...


class JavaProcess:
    """A shell-started `app_process` (the uiautomator2 server): any signal but SIGQUIT ends it."""

    name = "app_process"

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ended = asyncio.Event()
        self.killed_by: int | None = None

    def signal(self, signum: int) -> None:
        if signum != 3:  # SIGQUIT makes a JVM print its threads and go on
            self.killed_by = signum
            self.ended.set()


class ApkReplaceError(ValueError):
    """An APK would replace an app of the model or a system package."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"{package} is an app of this virtual device's app model (or a system package); "
            "an APK cannot replace it"
        )
        self.package = package


class Instrumented:
    """A running `am instrument`: its test package, the package it instruments, its pid, a stop switch."""

    def __init__(self, package: str, target: str, pid: int) -> None:
        self.package = package
        self.target = target
        self.pid = pid
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        self.stopped.set()
