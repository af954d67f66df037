"""The package manager of the virtual device: `pm` (also `cmd package`) and `dumpsys package PKG`.

Packages come from three places: the app model's apps (screens the device runs), APKs installed
with `adb install` / `pm install` (recorded from their manifests: see `emulator.apk`), and the
system packages every Android image has. Output follows Android 14 where clients parse it:
`package:NAME [versionCode:N]`, `instrumentation:PKG/CLASS (target=PKG)`, `Success` /
`Failure [CODE: message]`, and `Package [NAME] (hash):` with `versionCode=` / `versionName=`.
"""

from __future__ import annotations

import zlib

from emulator.apk import ApkError
from emulator.filesystem import FsError, normalize
from emulator.shell_io import CommandContext
from interpreter.appmodel import LAUNCHER_ACTIVITY, LAUNCHER_PACKAGE

__all__ = ["dumpsys_package", "dumpsys_services", "launchable_activity", "pm", "short_component"]

# `pm install` options that take a value (the value is not the APK path).
_INSTALL_VALUE_OPTIONS = {"-i", "-S", "--user", "--install-reason", "--originating-uri", "--referrer", "-p"}
_MODEL_VERSION = (1, "1.0")


def _hash(text: str) -> str:
    return f"{zlib.crc32(text.encode()):x}"


def short_component(package: str, activity: str) -> str:
    """Android's short component form: `pkg/.Act` when the class lies in the package."""
    if activity.startswith(package + "."):
        return f"{package}/{activity[len(package) :]}"
    return f"{package}/{activity}"


def launchable_activity(ctx: CommandContext, package: str) -> str | None:
    """The launcher activity of an installed package (None for one without, or not installed)."""
    device = ctx.device
    if package == LAUNCHER_PACKAGE:
        return LAUNCHER_ACTIVITY
    if device.phone.is_installed(package):
        app = device.apps.app(package)
        return app.screen(app.start_screen).activity
    apk = device.apks.get(package)
    return apk.launchable_activity if apk is not None else None


def _options(args: list[str], valued: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split `args` into options (`-x` or `-x VALUE` for those in `valued`) and operands."""
    options: dict[str, str] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in valued and i + 1 < len(args):
            options[arg] = args[i + 1]
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1:
            options[arg] = ""
        else:
            operands.append(arg)
        i += 1
    return options, operands


async def pm(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    sub = args[0] if args else ""
    if sub == "list" and args[1:2] in (["packages"], ["package"]):
        return _list_packages(ctx, args[2:])
    if sub == "list" and args[1:2] in (["instrumentation"], ["instrumentations"]):
        return _list_instrumentation(ctx, args[2:])
    if sub == "path" and len(args) >= 2:
        _, operands = _options(args[1:], {"--user"})
        package = operands[0] if operands else ""
        if not ctx.device.is_installed(package):
            return 1
        ctx.out(f"package:{apk_path(ctx, package)}\n")
        return 0
    if sub == "clear" and len(args) >= 2:
        package = args[-1]
        if not ctx.device.is_installed(package):
            ctx.out("Failed\n")
            return 1
        ctx.device.stop_package(package)
        ctx.out("Success\n")
        return 0
    if sub in ("grant", "revoke") and len(args) >= 3:
        return 0
    if sub == "list" and args[1:2] == ["users"]:
        ctx.out("Users:\n\tUserInfo{0:Owner:c13} running\n")
        return 0
    if sub == "install":
        return await _install(ctx, args[1:])
    if sub in ("install-create", "install-write", "install-commit", "install-multiple"):
        ctx.out(
            f"Failure [INSTALL_FAILED_INTERNAL_ERROR: `pm {sub}` (split APKs) is not supported by this "
            "virtual device; install one APK with `adb install FILE.apk`]\n"
        )
        return 1
    if sub == "uninstall" and len(args) >= 2:
        return _uninstall(ctx, args[-1])
    if sub == "resolve-activity":
        return _resolve_activity(ctx, args[1:])
    ctx.err(f"Unknown command: {' '.join(args) or '(none)'}\n")
    ctx.err(
        "Usage: pm list packages [-3] [-s] [-f] [-i] [-U] [--show-versioncode] | pm list users\n"
        "       pm list instrumentation [TARGET] | pm path PKG\n"
        "       pm install [-r] [-g] [-S SIZE] [PATH] | pm uninstall PKG | pm clear PKG\n"
        "       pm resolve-activity --brief PKG\n"
    )
    return 1


def _list_packages(ctx: CommandContext, args: list[str]) -> int:
    options, operands = _options(args, {"--user", "--uid"})
    needle = operands[0] if operands else ""
    device = ctx.device
    packages = set(device.phone.installed_packages()) | set(device.apks)
    if "-3" in options:  # third-party only: the model's Settings is the system's own app
        packages.difference_update(device.system_packages)
    else:
        packages.update(device.system_packages)
    if "-s" in options:
        packages = set(device.system_packages)
    for package in sorted(p for p in packages if needle in p):
        line = f"package:{apk_path(ctx, package)}={package}" if "-f" in options else f"package:{package}"
        if "--show-versioncode" in options:
            line += f" versionCode:{_version(ctx, package)[0]}"
        if "-i" in options:
            line += "  installer=null"
        if "-U" in options:
            line += f" uid:{1000 if package in device.system_packages else device.app_uid(package)}"
        ctx.out(line + "\n")
    return 0


def apk_path(ctx: CommandContext, package: str) -> str:
    """Where a package's APK lies: system packages under /system, the others under /data/app."""
    if package == "android":
        return "/system/framework/framework-res.apk"
    if package in ctx.device.system_packages:
        name = package.rsplit(".", 1)[-1].capitalize()
        return f"/system/priv-app/{name}/{name}.apk"
    return f"/data/app/~~{_hash(package)}==/{package}-1/base.apk"


def _version(ctx: CommandContext, package: str) -> tuple[int, str]:
    apk = ctx.device.apks.get(package)
    if apk is None:
        return _MODEL_VERSION
    return apk.version_code or 0, apk.version_name or ""


def _list_instrumentation(ctx: CommandContext, args: list[str]) -> int:
    _, operands = _options(args, set())
    target = operands[0] if operands else None
    for apk in sorted(ctx.device.apks.values(), key=lambda a: a.package):
        for item in apk.instrumentations:
            if target is None or item.target == target:
                ctx.out(f"instrumentation:{item.component} (target={item.target})\n")
    return 0


async def _install(ctx: CommandContext, args: list[str]) -> int:
    options, operands = _options(args, _INSTALL_VALUE_OPTIONS)
    if "-S" in options:
        size_text = options["-S"]
        if not size_text.isdigit():
            ctx.out(f"Error: -S needs a size in bytes, got {size_text!r}\n")
            return 1
        if ctx.read_input is None:
            ctx.out(
                "Failure [INSTALL_FAILED_INVALID_APK: -S needs the APK streamed on this stream's input]\n"
            )
            return 1
        try:
            data = await ctx.read_input(int(size_text))
        except EOFError as exc:
            ctx.out(f"Failure [INSTALL_PARSE_FAILED_NOT_APK: the stream ended early: {exc}]\n")
            return 1
        source = "the streamed APK"
    elif operands:
        path = normalize(operands[0], ctx.cwd)
        try:
            data = ctx.device.fs.read(path)
        except FsError as exc:
            ctx.out(f"Failure [INSTALL_FAILED_INVALID_URI: {operands[0]}: {exc.strerror}]\n")
            return 1
        source = path
    else:
        ctx.err("Error: no package specified (pm install [-r] [-g] [-S SIZE] PATH)\n")
        return 1
    try:
        ctx.device.install_apk(data, source)
    except ApkError as exc:
        ctx.out(f"Failure [INSTALL_PARSE_FAILED_NOT_APK: {exc}]\n")
        return 1
    except ValueError as exc:  # an APK named like an app of the model
        ctx.out(f"Failure [INSTALL_FAILED_UPDATE_INCOMPATIBLE: {exc}]\n")
        return 1
    ctx.out("Success\n")
    return 0


def _uninstall(ctx: CommandContext, package: str) -> int:
    if ctx.device.uninstall_apk(package):
        ctx.out("Success\n")
        return 0
    if ctx.device.phone.is_installed(package) or package in ctx.device.system_packages:
        ctx.out(
            f"Failure [DELETE_FAILED_INTERNAL_ERROR: {package} belongs to this virtual device's app model "
            "or system; only packages installed from APKs can be uninstalled]\n"
        )
    else:
        ctx.out(f"Failure [DELETE_FAILED_INTERNAL_ERROR: {package} is not installed]\n")
    return 1


def _resolve_activity(ctx: CommandContext, args: list[str]) -> int:
    options, operands = _options(args, {"-c", "-a", "--user", "-n", "-d", "-t"})
    package = operands[-1] if operands else ""
    # The launcher's activity answers HOME, not MAIN/LAUNCHER: as monkey, nothing resolves for it.
    launchable = ctx.device.is_installed(package) and package != LAUNCHER_PACKAGE
    activity = launchable_activity(ctx, package) if launchable else None
    if activity is None:
        ctx.out("No activity found\n")
        return 0
    if "--brief" not in options:
        ctx.out("Activity:\n")
    ctx.out("priority=0 preferredOrder=0 match=0x108000 specificIndex=-1 isDefault=true\n")
    ctx.out(short_component(package, activity) + "\n")
    return 0


def dumpsys_package(ctx: CommandContext, package: str) -> None:
    """`dumpsys package PKG`: nothing for a package that is not installed."""
    if not ctx.device.is_installed(package):
        return
    apk = ctx.device.apks.get(package)
    code, name = _version(ctx, package)
    min_sdk, target_sdk = (apk.min_sdk or 24, apk.target_sdk or 34) if apk is not None else (24, 34)
    ctx.out("Activity Resolver Table:\n  Non-Data Actions:\n      android.intent.action.MAIN:\n")
    activity = launchable_activity(ctx, package)
    if activity is not None:
        ctx.out(f"        {_hash(activity)} {short_component(package, activity)} filter {_hash(package)}\n")
        ctx.out('          Action: "android.intent.action.MAIN"\n')
        ctx.out('          Category: "android.intent.category.LAUNCHER"\n\n')
    ctx.out(f"Packages:\n  Package [{package}] ({_hash(package)}):\n")
    ctx.out(f"    pkg=Package{{{_hash(package)} {package}}}\n")
    ctx.out(f"    codePath=/data/app/~~{_hash(package)}==/{package}-1\n")
    ctx.out(f"    versionCode={code} minSdk={min_sdk} targetSdk={target_sdk}\n")
    ctx.out(f"    versionName={name}\n")
    ctx.out("    pkgFlags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ]\n")
    permissions = apk.permissions if apk is not None else ()
    if permissions:
        ctx.out("    requested permissions:\n")
        ctx.out("".join(f"      {permission}\n" for permission in permissions))
        ctx.out("    install permissions:\n")
        ctx.out("".join(f"      {permission}: granted=true\n" for permission in permissions))
    ctx.out("    User 0: ceDataInode=0 installed=true hidden=false suspended=false stopped=false\n")


def dumpsys_services(ctx: CommandContext, package: str | None) -> None:
    """`dumpsys activity services [PKG]`: the services of running APK packages.

    A package installed from an APK runs once started (`am start`, `monkey`); its manifest's
    services are then reported running in the foreground, as a helper app's services are.
    """
    device = ctx.device
    ctx.out("ACTIVITY MANAGER SERVICES (dumpsys activity services)\n")
    records = [
        (apk.package, service, pid)
        for apk in device.apks.values()
        if (package is None or apk.package == package) and (pid := device.apk_pid(apk.package)) is not None
        for service in apk.services
    ]
    if not records:
        ctx.out("  (nothing)\n")
        return
    ctx.out("  User 0 active services:\n")
    for owner, service, pid in records:
        component = short_component(owner, service)
        ctx.out(f"  * ServiceRecord{{{_hash(service)} u0 {component}}}\n")
        ctx.out(f"    intent={{cmp={component}}}\n    packageName={owner}\n    processName={owner}\n")
        ctx.out(f"    app=ProcessRecord{{{_hash(owner)} {pid}:{owner}/u0a300}}\n")
        ctx.out("    isForeground=true foregroundId=1 foregroundNoti=Notification(channel=main_channel)\n")
        ctx.out("    startRequested=true delayedStop=false stopIfKilled=false callStart=true\n")
