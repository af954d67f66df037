"""`am instrument`: running an installed test package's instrumentation on the virtual device.

The device runs no Dalvik code, so it can only run instrumentations it implements itself: the
Appium UiAutomator2 server (`emulator.appium_server`), which an installed test APK instruments
against the server APK's package. `am instrument -w TEST_PKG/RUNNER` then starts that server on
device port 6790 — reached through `adb forward tcp:N tcp:6790` like on a phone — and holds the
stream open while it runs. The server stops when its session is deleted, when either package is
force-stopped, or when the host closes the stream; `am instrument` then prints the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from emulator.apk import Instrumentation
from emulator.http_server import DeviceHttpServer
from emulator.shell_io import CommandContext

if TYPE_CHECKING:
    from emulator.device import Instrumented, VirtualDevice

log = logging.getLogger(__name__)

__all__ = ["APPIUM_SERVER_PACKAGE", "APPIUM_SERVER_PORT", "instrument"]

# The package of the Appium UiAutomator2 server APK: an instrumentation that targets it is the server.
APPIUM_SERVER_PACKAGE = "io.appium.uiautomator2.server"
APPIUM_SERVER_PORT = 6790
_TEST_CLASS = "io.appium.uiautomator2.server.test.AppiumUiAutomator2Server"

ServerFactory = Callable[["VirtualDevice", Callable[[], None]], DeviceHttpServer]


def _appium_server(device: VirtualDevice, quit: Callable[[], None]) -> DeviceHttpServer:
    from emulator.appium_server import AppiumServer  # loaded only when an instrumentation starts it

    return AppiumServer(device, quit)


# Instrumentation target package → (the server this device runs for it, its device port).
IN_DEVICE_SERVERS: dict[str, tuple[ServerFactory, int]] = {
    APPIUM_SERVER_PACKAGE: (_appium_server, APPIUM_SERVER_PORT),
}


def _failed(ctx: CommandContext, component: str, why: str) -> int:
    ctx.out(f"INSTRUMENTATION_STATUS: Error={why}\nINSTRUMENTATION_STATUS_CODE: -1\n")
    ctx.out(f"android.util.AndroidException: INSTRUMENTATION_FAILED: {component}\n")
    return 1


def _find(device: VirtualDevice, component: str) -> Instrumentation | None:
    package, _, name = component.partition("/")
    if name.startswith("."):
        name = package + name
    apk = device.apks.get(package)
    if apk is None:
        return None
    return next((item for item in apk.instrumentations if item.name == name), None)


async def instrument(ctx: CommandContext, args: list[str]) -> int:
    """`am instrument [-w] [-r] [--no-window-animation] [-e KEY VALUE]... COMPONENT`."""
    operands: list[str] = []
    wait = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-e" and i + 2 < len(args):
            i += 3
            continue
        if arg in ("-p", "--user", "--abi") and i + 1 < len(args):
            i += 2
            continue
        if arg == "-w":
            wait = True
        elif not arg.startswith("-"):
            operands.append(arg)
        i += 1
    if len(operands) != 1:
        ctx.err("usage: am instrument [-w] [-r] [-e KEY VALUE]... TEST_PACKAGE/RUNNER_CLASS\n")
        return 1
    component = operands[0]
    device = ctx.device
    item = _find(device, component)
    if item is None:
        return _failed(
            ctx, component, f"Unable to find instrumentation info for: ComponentInfo{{{component}}}"
        )
    if not device.is_installed(item.target):
        return _failed(ctx, component, f"Unable to find instrumentation target package: {item.target}")
    server = IN_DEVICE_SERVERS.get(item.target)
    if server is None:
        return _failed(
            ctx,
            component,
            f"this virtual device runs app models, not APK code: it cannot run the tests of {item.package} "
            f"(the one instrumentation it runs is the Appium UiAutomator2 server's, {APPIUM_SERVER_PACKAGE})",
        )
    factory, port = server
    if port in device.device_ports or item.target in device.instruments:
        return _failed(ctx, component, f"{item.target} is already running (device port {port} is in use)")
    from emulator.device import Instrumented

    instrumented = Instrumented(item.package, item.target, device.allocate_pid())
    device.instruments[item.target] = instrumented
    http = factory(device, instrumented.stop)
    try:
        device.map_port(port, await http.start())
    except BaseException:
        del device.instruments[item.target]
        await http.stop()
        raise
    ctx.out(
        f"INSTRUMENTATION_STATUS: class={_TEST_CLASS}\nINSTRUMENTATION_STATUS: current=1\n"
        "INSTRUMENTATION_STATUS: id=AndroidJUnitRunner\nINSTRUMENTATION_STATUS: numtests=1\n"
        f"INSTRUMENTATION_STATUS: stream=\n{_TEST_CLASS}:\nINSTRUMENTATION_STATUS: test=startServer\n"
        "INSTRUMENTATION_STATUS_CODE: 1\n"
    )
    if not wait:  # without -w, am returns at once and the instrumentation runs on
        task = asyncio.get_running_loop().create_task(_run(device, instrumented, http, port))
        device.background_tasks.add(task)
        task.add_done_callback(device.background_tasks.discard)
        return 0
    await ctx.flush()
    await _run(device, instrumented, http, port)
    ctx.out(
        f"INSTRUMENTATION_STATUS: class={_TEST_CLASS}\nINSTRUMENTATION_STATUS: current=1\n"
        "INSTRUMENTATION_STATUS: id=AndroidJUnitRunner\nINSTRUMENTATION_STATUS: numtests=1\n"
        "INSTRUMENTATION_STATUS: stream=.\nINSTRUMENTATION_STATUS: test=startServer\n"
        "INSTRUMENTATION_STATUS_CODE: 0\nINSTRUMENTATION_RESULT: stream=\n\nOK (1 test)\n\n\n"
        "INSTRUMENTATION_CODE: -1\n"
    )
    return 0


async def _run(device: VirtualDevice, instrumented: Instrumented, http: DeviceHttpServer, port: int) -> None:
    """Serve until the instrumentation is stopped (or this task is cancelled: the stream closed)."""
    try:
        await instrumented.stopped.wait()
    finally:
        device.unmap_port(port, http.port)
        if device.instruments.get(instrumented.target) is instrumented:
            del device.instruments[instrumented.target]
        with contextlib.suppress(Exception):
            await asyncio.shield(http.stop())
        log.info("%s: instrumentation of %s ended", device.serial, instrumented.target)
