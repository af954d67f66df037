"""Android's own tools in the virtual device's shell: pm, am, monkey, input, wm, dumpsys, ps,
screencap, uiautomator, ime, settings, getprop/setprop and app_process (the uiautomator2 server).

Output follows Android 14 closely where clients parse it: `package:NAME`, `Physical size: WxH`,
`mCurrentFocus=Window{hash u0 PKG/ACT}` (in `dumpsys window displays`: `emulator.window_dumps`),
`orientation=N`, `Display N (HWC display 0)`, `ps` lines with at least nine fields, the pid
second and the name last, and `pidof`, `ifconfig`, `ip addr`.
"""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from dataclasses import dataclass, replace
from random import Random

from emulator import properties
from emulator.broadcasts import broadcast
from emulator.filesystem import FsError, normalize
from emulator.instrumentation import instrument
from emulator.logcat import log, logcat
from emulator.package_commands import dumpsys_package, dumpsys_services, pm, short_component
from emulator.shell_io import Command, CommandContext
from emulator.shell_tools import dumpsys_cpuinfo, dumpsys_meminfo, put_setting
from emulator.window_dumps import dumpsys_activity_state, dumpsys_window
from interpreter.appmodel import LAUNCHER_PACKAGE
from interpreter.hierarchy import SCREEN_HEIGHT, SCREEN_WIDTH, to_android_xml

DISPLAY_ID = "4619827259835644672"
U2_MAIN_CLASS = "com.wetest.uia2.Main"
U2_STARTED = "[server] INFO: [UiAutomator2Server] Starting Server\n"
IME_ID = "com.google.android.inputmethod.latin/com.android.inputmethod.latin.LatinIME"

# `input keyevent` codes → the names PhoneState.press_key understands (others are no-ops there).
KEY_CODES = {
    3: "home", 4: "back", 19: "up", 20: "down", 21: "left", 22: "right", 23: "center",
    24: "volume_up", 25: "volume_down", 26: "power", 27: "camera", 61: "tab", 62: "space",
    66: "enter", 67: "delete", 82: "menu", 84: "search", 112: "forward_delete", 164: "volume_mute",
    187: "recent", 223: "sleep", 224: "wakeup",
}  # fmt: skip
_KEY_ALIASES = {"app_switch": "recent", "del": "delete", "dpad_center": "center", "recents": "recent"}
_INPUT_SOURCES = {"touchscreen", "touchpad", "keyboard", "mouse", "dpad", "gamepad", "stylus", "trackball"}


def key_name(arg: str) -> str:
    """`KEYCODE_HOME`, `HOME`, `home` or `3` → `home`."""
    if arg.isdigit():
        return KEY_CODES.get(int(arg), f"keycode_{arg}")
    name = arg.lower().removeprefix("keycode_")
    return _KEY_ALIASES.get(name, name)


_short = short_component


def _hash(text: str) -> str:
    return f"{zlib.crc32(text.encode()):x}"


# -- properties --------------------------------------------------------------------------------
async def getprop(ctx: CommandContext) -> int:
    props = ctx.device.props
    if len(ctx.args) == 1:
        ctx.out("".join(f"[{key}]: [{props[key]}]\n" for key in sorted(props)))
        return 0
    default = ctx.args[2] if len(ctx.args) > 2 else ""
    ctx.out(props.get(ctx.args[1], default) + "\n")
    return 0


async def setprop(ctx: CommandContext) -> int:
    if len(ctx.args) != 3:
        return ctx.fail("need 2 arguments: setprop NAME VALUE")
    name, value = ctx.args[1], ctx.args[2]
    if name.startswith("ro.") and name in ctx.device.props:
        return ctx.fail(f"failed to set property '{name}' to '{value}'")
    ctx.device.props[name] = value
    return 0


# -- packages and activities ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Intent:
    """What `am start` was asked: a component and/or an action with data, and `am`'s own flags."""

    package: str | None  # from -n, or -p
    activity: str | None  # fully qualified, from -n
    data: str | None
    flags: frozenset[str]
    description: str  # `Intent { act=... dat=... cmp=... }`


def _parse_am_start(args: list[str]) -> _Intent:
    component: str | None = None
    action = category = data = target = None
    flags: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-n" and i + 1 < len(args):
            component, i = args[i + 1], i + 2
        elif arg == "-a" and i + 1 < len(args):
            action, i = args[i + 1], i + 2
        elif arg == "-c" and i + 1 < len(args):
            category, i = args[i + 1], i + 2
        elif arg == "-p" and i + 1 < len(args):
            target, i = args[i + 1], i + 2
        elif arg in ("-W", "-S", "-D", "-R") or arg.startswith("--activity"):
            flags.add(arg)
            i += 1
        elif arg == "-d" and i + 1 < len(args):
            data, i = args[i + 1], i + 2
        elif arg in ("--user", "-e", "--es", "--ei", "--ez", "-t", "-f") and i + 1 < len(args):
            i += 3 if arg in ("-e", "--es", "--ei", "--ez") else 2
        else:
            i += 1
    parts = []
    if action:
        parts.append(f"act={action}")
    if data:
        parts.append(f"dat={data}")
    if category:
        parts.append(f"cat=[{category}]")
    package, activity = target, None
    if component:
        package, _, activity = component.partition("/")
        if activity.startswith("."):
            activity = package + activity
        parts.append(f"cmp={_short(package, activity) if activity else package}")
    elif target:
        parts.append(f"pkg={target}")
    description = "Intent { " + " ".join(parts) + " }"
    return _Intent(package, activity or None, data, frozenset(flags), description)


def _launched(ctx: CommandContext, intent: _Intent, package: str, cold: bool) -> int:
    if "-W" in intent.flags:
        shown = _short(package, ctx.device.phone.foreground_activity())
        ctx.out(f"Status: ok\nLaunchState: {'COLD' if cold else 'WARM'}\nActivity: {shown}\n")
        ctx.out("TotalTime: 212\nWaitTime: 215\nComplete\n")
    return 0


async def _am_start(ctx: CommandContext, args: list[str]) -> int:
    intent = _parse_am_start(args)
    phone = ctx.device.phone
    package, activity = intent.package, intent.activity
    ctx.out(f"Starting: {intent.description}\n")
    if intent.data is not None and activity is None:
        # A VIEW intent: the app model's deep links decide which app and screen open it.
        if "-S" in intent.flags and package is not None:
            ctx.device.stop_package(package)
        running = set(phone.running_packages())
        opened = phone.open_url(intent.data, package)
        if opened is None:
            ctx.err(f"Error: Activity not started, unable to resolve {intent.description}\n")
            return 1
        return _launched(ctx, intent, opened, opened not in running)
    if package is None:
        ctx.err(f"Error: Activity not started, unable to resolve {intent.description}\n")
        return 1
    if not ctx.device.is_installed(package):
        ctx.err(f"Error type 3\nError: Activity class {{{package}/{activity}}} does not exist.\n")
        return 1
    if "-S" in intent.flags:
        ctx.device.stop_package(package)
    if not phone.is_installed(package):
        # A package installed from an APK: its process starts, with nothing of it to show.
        ctx.device.start_apk_process(package)
        if "-W" in intent.flags:
            ctx.out(f"Status: ok\nLaunchState: COLD\nActivity: {_short(package, activity or '')}\n")
            ctx.out("TotalTime: 150\nWaitTime: 152\nComplete\n")
        return 0
    cold = package not in phone.running_packages()
    if activity is None or package == LAUNCHER_PACKAGE:
        phone.launch(package)
    elif not phone.start_activity(package, activity):
        ctx.err(f"Error type 3\nError: Activity class {{{_short(package, activity)}}} does not exist.\n")
        return 1
    return _launched(ctx, intent, package, cold)


async def am(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    if args[:1] == ["get-current-user"]:
        ctx.out("0\n")
        return 0
    if args[:1] == ["force-stop"] and len(args) >= 2:
        ctx.device.stop_package(args[-1])
        return 0
    if args[:1] == ["instrument"]:
        return await instrument(ctx, args[1:])
    if args[:1] in (["start"], ["start-activity"]):
        return await _am_start(ctx, args[1:])
    if args[:1] == ["broadcast"]:
        return await broadcast(ctx, args[1:])
    ctx.err(f"Unknown command: {' '.join(args) or '(none)'}\n")
    return 1


async def monkey(ctx: CommandContext) -> int:
    """`monkey -p PKG [-c CATEGORY] [-s SEED] [--throttle MS] [-v ...] COUNT`: start the package, then
    inject COUNT-1 pseudo-random events into it — taps (85 %) and BACK (15 %), seeded — keeping it in
    front as monkey does (an activity of another package is not allowed to start: the package is
    brought back). `-v` prints monkey's verbose header and `// Monkey finished`."""
    args = ctx.args[1:]
    ctx.out("".join(f"  bash arg: {a}\n" for a in args))
    ctx.out(f"args: [{', '.join(args)}]\n" + "".join(f' arg: "{a}"\n' for a in args))
    package = args[args.index("-p") + 1] if "-p" in args and args.index("-p") + 1 < len(args) else None
    if package is not None:
        ctx.out(f'data="{package}"\n')
    if "-c" in args and args.index("-c") + 1 < len(args):
        ctx.out(f'data="{args[args.index("-c") + 1]}"\n')
    apk = ctx.device.apks.get(package or "")
    launchable = apk is not None and apk.launchable_activity is not None
    if (
        package is None
        or package == LAUNCHER_PACKAGE
        or not (ctx.device.phone.is_installed(package) or launchable)
    ):
        ctx.out("** No activities found to run, monkey aborted.\n")
        return 252
    options = _monkey_options(args)
    if isinstance(options, str):
        ctx.err(f"** Error: {options}\n")
        return 1
    count, seed, throttle_ms, verbose = options
    if verbose:
        ctx.out(f":Monkey: seed={seed} count={count}\n:AllowPackage: {package}\n")
        for category in ("LAUNCHER", "MONKEY"):
            ctx.out(f":IncludeCategory: android.intent.category.{category}\n")
    started = time.monotonic()
    if apk is not None:
        ctx.device.start_apk_process(package)
    else:
        ctx.device.phone.launch(package)
    phone = ctx.device.phone
    random = Random(seed)
    for _ in range(max(count - 1, 0)):
        if apk is None and phone.foreground_package() != package:
            phone.launch(package)  # out of the app (BACK): monkey's app switch brings it back
        if random.random() < 0.15:
            ctx.device.press_key("back")
        else:
            phone.tap(random.uniform(0, phone.width - 1), random.uniform(0, phone.height - 1))
        if apk is None and phone.foreground_package() not in (package, LAUNCHER_PACKAGE):
            phone.launch(package)  # monkey's controller refuses another package's activity
        if throttle_ms:
            await asyncio.sleep(throttle_ms / 1000)
    elapsed = int((time.monotonic() - started) * 1000)
    ctx.out(f"Events injected: {count}\n")
    if verbose:
        ctx.out(":Sending rotation degree=0, persist=false\n")
        ctx.out(":Dropped: keys=0 pointers=0 trackballs=0 flips=0 rotations=0\n")
    ctx.out(f"## Network stats: elapsed time={elapsed}ms (0ms mobile, 0ms wifi, {elapsed}ms not connected)\n")
    if verbose:
        ctx.out("// Monkey finished\n")
    return 0


def _monkey_options(args: list[str]) -> tuple[int, int, int, int] | str:
    """(count, seed, throttle ms, verbosity) from monkey's arguments, or what is wrong with them."""
    count, seed, throttle, verbose = None, int(time.time() * 1000) % 100_000, 0, 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-s", "--throttle") and i + 1 < len(args):
            if not args[i + 1].lstrip("-").isdigit():
                return f"Invalid argument for {arg}: {args[i + 1]}"
            seed, throttle = (int(args[i + 1]), throttle) if arg == "-s" else (seed, int(args[i + 1]))
            i += 2
            continue
        if arg == "-v":
            verbose += 1
        elif arg.startswith("--pct-") or arg in ("-p", "-c", "--pkg-blacklist-file", "--pkg-whitelist-file"):
            i += 1  # the option's value
        elif arg.isdigit():
            count = int(arg)
        i += 1
    if count is None:
        return "Invalid event count (monkey needs a COUNT of events)"
    return count, seed, throttle, verbose


# -- input and the screen --------------------------------------------------------------------------
async def input_(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    if args and args[0] in _INPUT_SOURCES:
        args = args[1:]
    phone = ctx.device.phone
    sub, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if sub == "tap" and len(rest) == 2:
            phone.tap(float(rest[0]), float(rest[1]))
        elif sub in ("swipe", "draganddrop") and len(rest) in (4, 5):
            x1, y1, x2, y2 = (float(v) for v in rest[:4])
            # Android's default is 300 ms; the speed decides the fling (`interpreter.appmodel.gestures`).
            duration_ms = float(rest[4]) if len(rest) == 5 else 300.0
            await asyncio.sleep(min(duration_ms, 10_000) / 1000)
            phone.swipe(x1, y1, x2, y2, max(duration_ms, 1.0))
        elif sub == "text" and rest:
            # Android's `input text` turns %s into spaces.
            phone.input_text(" ".join(rest).replace("%s", " "))
        elif sub == "keyevent" and rest:
            for arg in rest:
                if not arg.startswith("--"):
                    ctx.device.press_key(key_name(arg))
        else:
            ctx.err(f"Error: Unknown command: {' '.join(args) or '(none)'}\n")
            ctx.err(
                "Usage: input [<source>] tap X Y | swipe X1 Y1 X2 Y2 [ms] | text TEXT | keyevent KEY...\n"
            )
            return 1
    except ValueError:
        ctx.err(f"Error: Invalid arguments for command: {sub}\n")
        return 1
    return 0


async def wm(ctx: CommandContext) -> int:
    sub = ctx.args[1] if len(ctx.args) > 1 else ""
    width, height = SCREEN_WIDTH, SCREEN_HEIGHT  # the panel's, whatever the rotation
    if sub == "size":
        ctx.out(f"Physical size: {width}x{height}\n")
    elif sub == "density":
        ctx.out(f"Physical density: {properties.DENSITY}\n")
    elif sub == "dismiss-keyguard":
        pass  # there is no lock screen to dismiss
    elif sub == "user-rotation":
        # `wm user-rotation [free|lock] [0-3]`: locking to a rotation turns the display.
        rest = list(ctx.args[2:])
        if rest[:1] == ["-d"]:
            del rest[:2]  # the display id: there is one display
        if not rest:
            ctx.out(f"lock {ctx.device.phone.rotation}\n")
        elif rest[0] == "lock" and len(rest) > 1 and rest[1] in ("0", "1", "2", "3"):
            ctx.device.phone.set_rotation(int(rest[1]))
        elif rest[0] not in ("free", "lock"):
            return ctx.fail(f"unknown user-rotation {' '.join(rest)!r}: use free or lock 0..3")
    else:
        ctx.err(f"Error: unknown command '{sub}'\n")
        return 1
    return 0


async def screencap(ctx: CommandContext) -> int:
    """`screencap [-p] [-d ID] [FILE]`: PNG with -p or a `.png` file name, else Android's raw format."""
    from interpreter.appmodel import screen  # imported here: Pillow takes a while to import

    args = ctx.args[1:]
    if "-d" in args:
        index = args.index("-d")
        display = args[index + 1] if index + 1 < len(args) else ""
        if display not in ("0", DISPLAY_ID):
            return ctx.fail(f"Display Id '{display}' is not valid.")
        del args[index : index + 2]
    files = [a for a in args if not a.startswith("-")]
    as_png = "-p" in args or (bool(files) and files[0].endswith(".png"))
    if as_png:
        data = screen.render_png(ctx.device.phone)
    else:
        # width, height, pixel format 1 (RGBA_8888), color space 1 (sRGB), then the pixels.
        image = screen.render_image(ctx.device.phone).convert("RGBA")
        data = struct.pack("<4I", image.width, image.height, 1, 1) + image.tobytes()
    if files:
        try:
            ctx.device.fs.write(normalize(files[0], ctx.cwd), data)
        except FsError as exc:
            ctx.err(f"Error opening file: {files[0]} ({exc.strerror})\n")
            return 1
    else:
        ctx.out(data)
    return 0


async def uiautomator(ctx: CommandContext) -> int:
    """`uiautomator dump [--compressed] [FILE]` (default /sdcard/window_dump.xml; /dev/tty prints it)."""
    args = ctx.args[1:]
    if not args or args[0] != "dump":
        ctx.err("Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\n")
        ctx.err("dump: creates an XML dump of current UI hierarchy\n")
        return 1
    files = [a for a in args[1:] if not a.startswith("--")]
    path = normalize(files[0] if files else "/sdcard/window_dump.xml", ctx.cwd)
    fault = ctx.device.faults.dump
    xml = fault if fault is not None else to_android_xml(ctx.device.phone.hierarchy())
    if path in ("/dev/tty", "/dev/stdout"):
        ctx.out(xml)
    else:
        try:
            ctx.device.fs.write(path, xml.encode("utf-8"))
        except FsError as exc:
            ctx.err(f"ERROR: could not write {path}: {exc.strerror}\n")
            return 1
    ctx.out(f"UI hierchary dumped to: {path}\n")
    return 0


# -- system state -----------------------------------------------------------------------------------
async def dumpsys(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    service = args[0] if args else ""
    phone = ctx.device.phone
    if service == "window":
        dumpsys_window(ctx, args[1] if len(args) > 1 else "")
    elif service == "activity":
        sub = args[1] if len(args) > 1 else "activities"
        if sub == "services":
            dumpsys_services(ctx, args[2] if len(args) > 2 else None)
        elif sub == "processes":
            _dumpsys_processes(ctx)
        else:
            dumpsys_activity_state(ctx, sub)
    elif service == "display":
        width, height, rotation = phone.width, phone.height, phone.rotation
        ctx.out("DISPLAY MANAGER (dumpsys display)\n")
        ctx.out(
            "  mDefaultViewport=DisplayViewport{type=INTERNAL, valid=true, isActive=true, displayId=0, "
            f"uniqueId='local:{DISPLAY_ID}', physicalPort=0, orientation={rotation}, "
            f"logicalFrame=Rect(0, 0 - {width}, {height}), deviceWidth={width}, deviceHeight={height}}}\n"
        )
        ctx.out(
            f'  mBaseDisplayInfo=DisplayInfo{{"Built-in Screen", displayId 0, real {width} x {height}, '
            f"density {properties.DENSITY}, rotation {rotation}}}\n"
        )
    elif service == "SurfaceFlinger":
        ctx.out(f'Display {DISPLAY_ID} (HWC display 0): port=0 pnpId=GGL displayName="EMU_display_0"\n')
    elif service == "package" and len(args) > 1:
        dumpsys_package(ctx, args[1])
    elif service == "battery":
        if len(args) > 1:
            problem = ctx.device.battery.command(args[1:])
            if problem is not None:
                ctx.err(problem)
                return 1
        else:
            ctx.out(ctx.device.battery.dump())
    elif service == "power":
        on = ctx.device.screen_on
        ctx.out(f"POWER MANAGER (dumpsys power)\n  mWakefulness={'Awake' if on else 'Asleep'}\n")
        ctx.out(f"  mHoldingDisplaySuspendBlocker={'true' if on else 'false'}\n")
        ctx.out(f"Display Power: state={'ON' if on else 'OFF'}\n")
    elif service == "input_method":
        ctx.out(f"  mCurMethodId={current_ime(ctx)}\n  mInputShown=false\n")
    elif service == "meminfo":
        return dumpsys_meminfo(ctx, next((a for a in args[1:] if not a.startswith("-")), None))
    elif service == "cpuinfo":
        return dumpsys_cpuinfo(ctx)
    # Other services print nothing here, as a service without a dump would.
    return 0


def _dumpsys_processes(ctx: CommandContext) -> None:
    """`dumpsys activity processes`: the app processes, as `ProcessRecord{hash PID:NAME/u0aN}` records."""
    ctx.out("ACTIVITY MANAGER RUNNING PROCESSES (dumpsys activity processes)\n  All known processes:\n")
    apps = [(user, pid, name) for user, pid, _, name in ctx.device.processes() if user.startswith("u0_a")]

    def record(user: str, pid: int, name: str) -> str:
        return f"ProcessRecord{{{_hash(name + str(pid))} {pid}:{name}/{user.replace('_', '')}}}"

    for user, pid, name in apps:
        uid = 10000 + int(user.removeprefix("u0_a"))
        ctx.out(f"  *APP* UID {uid} {record(user, pid, name)}\n    user #0 uid={uid}\n")
    ctx.out("  PID mappings:\n")
    for user, pid, name in sorted(apps, key=lambda row: row[1]):
        ctx.out(f"    PID #{pid}: {record(user, pid, name)}\n")


async def ps(ctx: CommandContext) -> int:
    """`ps [-A] [-u|-U USER,...] [-p PID,...] [NAME|PID ...]`: the processes, selected as toybox does."""
    users: set[str] = set()
    pids: set[str] = set()
    names: set[str] = set()
    args = ctx.args[1:]
    while args:
        arg = args.pop(0)
        if arg in ("-u", "-U", "-p", "-o", "-k", "-g", "-G", "-t") and not args:
            return ctx.fail(f"Missing argument to {arg}")
        if arg in ("-u", "-U"):
            users.update(args.pop(0).split(","))
        elif arg == "-p":
            pids.update(args.pop(0).split(","))
        elif arg in ("-o", "-k", "-g", "-G", "-t"):
            args.pop(0)  # columns, sort keys, groups and ttys: the one format here
        elif not arg.startswith("-"):
            (pids if arg.isdigit() else names).update(arg.split(","))
    ctx.out("USER           PID  PPID        VSZ    RSS WCHAN            ADDR S NAME\n")
    for user, pid, ppid, name in ctx.device.processes():
        if (users or pids or names) and not (user in users or str(pid) in pids or name in names):
            continue  # a process shows when it matches any of the selections, as in toybox
        ctx.out(
            f"{user:<10} {pid:>7} {ppid:>5} {14000000 + pid * 37:>10} {90000 + pid % 9000:>6} 0 0 S {name}\n"
        )
    return 0


async def pidof(ctx: CommandContext) -> int:
    """`pidof [-s] NAME...`: the pids of processes with these names, newest first; status 1 when none."""
    single = "-s" in ctx.args[1:]
    names = [a for a in ctx.args[1:] if not a.startswith("-")]
    found: list[int] = []
    for name in names:
        pids = sorted((pid for _, pid, _, process in ctx.device.processes() if process == name), reverse=True)
        found.extend(pids[:1] if single else pids)
    if not found:
        return 1
    ctx.out(" ".join(str(pid) for pid in found) + "\n")
    return 0


# The virtual device's Wi-Fi: an emulator's usual user-mode network.
WLAN_IP, WLAN_PREFIX, WLAN_BROADCAST, WLAN_MAC = "10.0.2.16", 24, "10.0.2.255", "02:15:b2:00:00:00"


async def ifconfig(ctx: CommandContext) -> int:
    """`ifconfig [IFACE]` as toybox prints it: `wlan0` (the device's address) and `lo`."""
    wanted = ctx.args[1] if len(ctx.args) > 1 else None
    interfaces = {
        "wlan0": (
            f"wlan0     Link encap:Ethernet  HWaddr {WLAN_MAC}\n"
            f"          inet addr:{WLAN_IP}  Bcast:{WLAN_BROADCAST}  Mask:255.255.255.0 \n"
            "          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1\n\n"
        ),
        "lo": (
            "lo        Link encap:Local Loopback \n"
            "          inet addr:127.0.0.1  Mask:255.0.0.0 \n"
            "          UP LOOPBACK RUNNING  MTU:65536  Metric:1\n\n"
        ),
    }
    if wanted is not None and wanted not in interfaces:
        return ctx.fail(f"{wanted}: No such device")
    ctx.out("".join(text for name, text in interfaces.items() if wanted in (None, name)))
    return 0


async def ip(ctx: CommandContext) -> int:
    """`ip addr [show [dev] IFACE]` / `ip -4 addr`: the loopback and wlan0 addresses."""
    args = [a for a in ctx.args[1:] if not a.startswith("-")]
    if not args or args[0] not in ("a", "addr", "address"):
        ctx.err("Usage: ip addr [show [dev] IFACE]\n")
        return 1
    rest = [a for a in args[1:] if a not in ("show", "dev")]
    wanted = rest[0] if rest else None
    interfaces = {
        "lo": "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n"
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
        "    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n",
        "wlan0": "3: wlan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default "
        "qlen 1000\n"
        f"    link/ether {WLAN_MAC} brd ff:ff:ff:ff:ff:ff\n"
        f"    inet {WLAN_IP}/{WLAN_PREFIX} brd {WLAN_BROADCAST} scope global wlan0\n"
        "       valid_lft forever preferred_lft forever\n",
    }
    if wanted is not None and wanted not in interfaces:
        ctx.err(f'Device "{wanted}" does not exist.\n')
        return 1
    ctx.out("".join(text for name, text in interfaces.items() if wanted in (None, name)))
    return 0


def current_ime(ctx: CommandContext) -> str:
    """The selected input method: the secure setting, as on Android."""
    return ctx.device.settings["secure"].get("default_input_method", IME_ID)


def available_imes(ctx: CommandContext) -> list[str]:
    """The system keyboard and the input methods of installed APKs (`pkg/.Service`)."""
    from_apks = (
        short_component(a.package, name) for a in ctx.device.apks.values() for name in a.input_methods
    )
    return [IME_ID, *from_apks]


async def ime(ctx: CommandContext) -> int:
    """`ime list [-a] [-s]`, `ime enable|disable|set ID`, `ime reset`: input methods, those of
    installed APKs included (uiautomator2's AdbKeyboard); the selected one is the secure setting
    `default_input_method`. No input method's own code runs: selecting one changes no typing."""
    sub = ctx.args[1] if len(ctx.args) > 1 else ""
    available = available_imes(ctx)
    enabled = ctx.device.enabled_imes
    target = ctx.args[-1] if len(ctx.args) > 2 else ""
    if sub == "list":
        shown = [i for i in available if "-a" in ctx.args[2:] or i in enabled or i == current_ime(ctx)]
        if "-s" in ctx.args[2:]:
            ctx.out("".join(f"{i}\n" for i in shown))
        else:
            ctx.out("".join(f"{i}:\n  mId={i} mSettingsActivityName=null\n" for i in shown))
        return 0
    if sub == "reset":
        enabled.intersection_update({IME_ID})
        ctx.device.settings["secure"]["default_input_method"] = IME_ID
        ctx.out(f"Reset current and enabled IMEs for user #0\n  Selected: {IME_ID}\n")
        return 0
    if sub in ("enable", "disable", "set") and target:
        if target not in available:
            verb = {"enable": "enabled", "disable": "disabled", "set": "selected"}[sub]
            ctx.err(f"Unknown input method {target} cannot be {verb} for user #0\n")
            return 255
        if sub == "enable":
            state = "already enabled" if target in enabled else "now enabled"
            ctx.out(f"Input method {target}: {state} for user #0\n")
            enabled.add(target)
        elif sub == "disable":
            state = "now disabled" if target in enabled else "already disabled"
            ctx.out(f"Input method {target}: {state} for user #0\n")
            enabled.discard(target)
            if current_ime(ctx) == target:
                ctx.device.settings["secure"]["default_input_method"] = IME_ID
        else:
            enabled.add(target)
            ctx.device.settings["secure"]["default_input_method"] = target
            ctx.out(f"Input method {target} selected for user #0\n")
        return 0
    ctx.err("ime <command>: list [-a] [-s] | enable ID | disable ID | set ID | reset\n")
    return 1


async def settings(ctx: CommandContext) -> int:
    args = [a for a in ctx.args[1:] if not a.startswith("--")]
    store = ctx.device.settings
    if len(args) >= 3 and args[0] == "get":
        ctx.out(store.get(args[1], {}).get(args[2], "null") + "\n")
        return 0
    if len(args) >= 4 and args[0] == "put":
        put_setting(ctx, args[1], args[2], args[3])
        return 0
    if len(args) >= 3 and args[0] == "delete":
        store.get(args[1], {}).pop(args[2], None)
        ctx.out("Deleted 1 rows\n")
        return 0
    if len(args) == 2 and args[0] == "list":
        ctx.out("".join(f"{k}={v}\n" for k, v in sorted(store.get(args[1], {}).items())))
        return 0
    ctx.err("usage:  settings [--user <USER_ID> | current] get|put|delete|list NAMESPACE [KEY [VALUE]]\n")
    return 1


async def app_process(ctx: CommandContext) -> int:
    """Start the uiautomator2 server from the pushed jar and keep it up until the stream closes."""
    args = ctx.args[1:]
    classpath = ctx.env.get("CLASSPATH", "")
    main = next((a for a in args if not a.startswith("-") and a != "/" and "." in a), "")
    if main != U2_MAIN_CLASS or not any(ctx.device.fs.exists(p) for p in classpath.split(":") if p):
        ctx.err(f'Exception in thread "main" java.lang.ClassNotFoundException: {main or "(no class)"}\n')
        return 1
    port = int(args[args.index("-p") + 1]) if "-p" in args and args.index("-p") + 1 < len(args) else 9008
    ctx.out(U2_STARTED)
    if port in ctx.device.device_ports:
        ctx.err(
            "java.lang.IllegalStateException: UiAutomationService "
            "android.accessibilityservice.IAccessibilityServiceClient$Stub$Proxy@5deffd5already registered!\n"
        )
        return 1
    async with ctx.device.u2_server(port) as process:
        await ctx.flush()
        await process.ended.wait()  # `kill PID`; or the host closes the stream, which cancels us
    return 128 + (process.killed_by or 0)


async def cmd(ctx: CommandContext) -> int:
    """`cmd package|activity|window ...`: the binder front of pm, am and wm."""
    sub = ctx.args[1:2]
    if sub == ["package"]:
        return await pm(replace(ctx, args=["pm", *ctx.args[2:]]))
    if sub == ["activity"]:
        return await am(replace(ctx, args=["am", *ctx.args[2:]]))
    if sub == ["window"]:
        return await wm(replace(ctx, args=["wm", *ctx.args[2:]]))
    if sub == ["notification"] and ctx.args[2:3] in (["allow_listener"], ["disallow_listener"]):
        return 0
    ctx.err(f"cmd: Can't find service: {ctx.args[1] if len(ctx.args) > 1 else ''}\n")
    return 20


async def appops(ctx: CommandContext) -> int:
    """`appops set PKG OP MODE` (accepted; the app model has no permissions to enforce) and `appops get`."""
    if ctx.args[1:2] == ["set"] and len(ctx.args) >= 5:
        return 0 if ctx.device.is_installed(ctx.args[2]) else ctx.fail(f"Unknown package: {ctx.args[2]}")
    if ctx.args[1:2] == ["get"] and len(ctx.args) >= 3:
        ctx.out("No operations.\n")
        return 0
    ctx.err("usage: appops set PACKAGE OP MODE | appops get PACKAGE\n")
    return 1


COMMANDS: dict[str, Command] = {
    "appops": appops,
    "getprop": getprop,
    "setprop": setprop,
    "pm": pm,
    "am": am,
    "monkey": monkey,
    "input": input_,
    "wm": wm,
    "screencap": screencap,
    "uiautomator": uiautomator,
    "dumpsys": dumpsys,
    "ps": ps,
    "ime": ime,
    "pidof": pidof,
    "ifconfig": ifconfig,
    "ip": ip,
    "settings": settings,
    "app_process": app_process,
    "log": log,
    "logcat": logcat,
    "cmd": cmd,
}
