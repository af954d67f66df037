"""More of toybox and mksh that test scripts use: `test`/`[`, `stat`, `uptime`, `df`, and the
`/proc` files a phone has (`version`, `cpuinfo`, `meminfo`), for an x86_64 emulator with 2 GB.

    test EXPR / [ EXPR ]      -e -f -d -s -r -w -x -z -n, = != < >, -eq -ne -lt -le -gt -ge, !, -a, -o
    stat [-c FORMAT] FILE...  %n %s %a %A %F %U %G %u %g %Y %y %b %i %h %x %z (default: toybox's lines)
    uptime                    `HH:MM:SS up N min,  0 users,  load average: ...`
    df [-h] [PATH...]         the partitions a phone shows
"""

from __future__ import annotations

import re
import stat as stats
import time
import zlib
from collections.abc import Callable

from emulator.filesystem import DirNode, FileNode, FileSystem, normalize
from emulator.shell_io import CommandContext

_STARTED = time.time()
MEM_TOTAL_KB = 2_030_000

PROC_FILES = {
    "/proc/version": (
        "Linux version 6.1.23-android14-4-00257-g7e35917775b8-ab9964412 (build-user@build-host) "
        "(Android (9796371, based on r487747) clang version 17.0.0) "
        "#1 SMP PREEMPT Mon Apr 17 20:50:58 UTC 2023\n"
    ),
    "/proc/cpuinfo": "".join(
        f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
        f"model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu MHz\t\t: 2200.000\ncache size\t: 8192 KB\n"
        f"physical id\t: 0\nsiblings\t: 4\ncore id\t\t: {n}\ncpu cores\t: 4\nflags\t\t: fpu sse sse2 ssse3 "
        f"sse4_1 sse4_2 avx avx2\nbogomips\t: 4400.00\n\n"
        for n in range(4)
    ),
    "/proc/meminfo": (
        f"MemTotal:        {MEM_TOTAL_KB} kB\nMemFree:          412000 kB\nMemAvailable:    1104000 kB\n"
        "Buffers:            8000 kB\nCached:           760000 kB\nSwapCached:            0 kB\n"
        "Active:           620000 kB\nInactive:         510000 kB\nSwapTotal:       1015000 kB\n"
        "SwapFree:        1015000 kB\nShmem:              6000 kB\n"
    ),
    # The system's listening sockets (no app runs, so no WebView's devtools socket: Appium's
    # `contexts` reads this file and finds only NATIVE_APP).
    "/proc/net/unix": "Num       RefCount Protocol Flags    Type St Inode Path\n"
    + "".join(
        f"0000000000000000: 00000002 00000000 00010000 {kind} 01 {inode:5d} {path}\n"
        for kind, inode, path in (
            ("0001", 8823, "/dev/socket/zygote"),
            ("0001", 8826, "/dev/socket/zygote_secondary"),
            ("0001", 8830, "/dev/socket/usap_pool_primary"),
            ("0002", 8764, "/dev/socket/logdw"),
            ("0001", 8766, "/dev/socket/logdr"),
            ("0001", 8768, "/dev/socket/logd"),
            ("0001", 8790, "/dev/socket/property_service"),
            ("0001", 9312, "/dev/socket/installd"),
            ("0001", 9420, "/dev/socket/lmkd"),
            ("0001", 11240, "@jdwp-control"),
        )
    ),
}


def _uptime_s() -> float:
    return time.time() - _STARTED + 3600.0  # the phone was up a while before this process


def add_proc_files(fs: FileSystem) -> None:
    """The /proc files, made when read (size 0, as /proc shows): static text, and `uptime`/`loadavg`."""
    sources: dict[str, Callable[[], bytes]] = {
        path: _fixed(text.encode()) for path, text in PROC_FILES.items()
    }
    sources["/proc/uptime"] = lambda: f"{_uptime_s():.2f} {_uptime_s() * 3.6:.2f}\n".encode()
    sources["/proc/loadavg"] = _fixed(b"0.52 0.48 0.41 1/1024 4242\n")
    fs.system = True
    for path, source in sources.items():
        folder = path.rsplit("/", 1)[0]
        if fs.lookup(folder) is None:
            fs.mkdir(folder, parents=True, mode=0o555)
        fs.write(path, b"", mode=0o444)
        fs.live[path] = source
    fs.system = False


def _fixed(data: bytes) -> Callable[[], bytes]:
    return lambda: data


# -- test / [ ------------------------------------------------------------------------------
class _TestError(Exception):
    pass


def _file_test(ctx: CommandContext, op: str, path: str) -> bool:
    node = ctx.device.fs.lookup(normalize(path, ctx.cwd)) if path else None
    if node is None:
        return False
    mode = node.mode
    if op == "-e":
        return True
    if op == "-f":
        return isinstance(node, FileNode)
    if op == "-d":
        return isinstance(node, DirNode)
    if op == "-s":
        return isinstance(node, FileNode) and len(node.data) > 0
    if op == "-r":
        return bool(mode & 0o444)
    if op == "-w":
        return bool(mode & 0o222)
    if op == "-x":
        return bool(mode & 0o111)
    if op in ("-L", "-h", "-p", "-S", "-b", "-c"):
        return False
    raise _TestError(f"unknown operand {op}")


_FILE_OPS = {"-e", "-f", "-d", "-s", "-r", "-w", "-x", "-L", "-h", "-p", "-S", "-b", "-c"}
_INT_OPS = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__}
_INT_OPS |= {"-gt": int.__gt__, "-ge": int.__ge__}


def _number(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _TestError(f"{text}: bad number") from None


def _evaluate(ctx: CommandContext, args: list[str]) -> bool:
    """POSIX's rules by argument count, with -a and -o between them."""
    for joiner in ("-o", "-a"):
        if joiner in args[1:-1]:
            at = len(args) - 1 - args[::-1].index(joiner)
            if 0 < at < len(args) - 1:
                first, second = _evaluate(ctx, args[:at]), _evaluate(ctx, args[at + 1 :])
                return (first or second) if joiner == "-o" else (first and second)
    if not args:
        return False
    if args[0] == "!" and len(args) > 1:
        return not _evaluate(ctx, args[1:])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, value = args
        if op == "-z":
            return value == ""
        if op == "-n":
            return value != ""
        if op in _FILE_OPS:
            return _file_test(ctx, op, value)
        raise _TestError(f"unknown operand {op}")
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        if op == "<":
            return left < right
        if op == ">":
            return left > right
        if op in _INT_OPS:
            return bool(_INT_OPS[op](_number(left), _number(right)))
        if args[0] == "(" and args[2] == ")":
            return _evaluate(ctx, [args[1]])
        raise _TestError(f"unknown operand {op}")
    if args[0] == "(" and args[-1] == ")":
        return _evaluate(ctx, args[1:-1])
    raise _TestError("too many arguments")


async def test(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    if ctx.name.endswith("["):
        if not args or args[-1] != "]":
            return ctx.fail("missing ]", 2)
        args = args[:-1]
    try:
        return 0 if _evaluate(ctx, args) else 1
    except _TestError as exc:
        return ctx.fail(str(exc), 2)


# -- stat, uptime, df ------------------------------------------------------------------------
def _stat_fields(path: str, node: FileNode | DirNode) -> dict[str, str]:
    size = len(node.data) if isinstance(node, FileNode) else 3452
    kind = "regular file" if isinstance(node, FileNode) else "directory"
    when = time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000", time.gmtime(node.mtime))
    return {
        "n": path, "s": str(size), "a": f"{stats.S_IMODE(node.mode):o}", "A": stats.filemode(node.mode),
        "F": kind, "U": "shell", "G": "shell", "u": "2000", "g": "2000", "Y": str(node.mtime), "y": when,
        "x": when, "z": when, "b": str((size + 511) // 512), "h": "1" if isinstance(node, FileNode) else "2",
        "i": str(zlib.crc32(path.encode()) % 900000 + 1000), "%": "%",
    }  # fmt: skip


def _format(form: str, fields: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(form):
        if form[i] == "%" and i + 1 < len(form):
            out.append(fields.get(form[i + 1], "?"))
            i += 2
        else:
            out.append(form[i])
            i += 1
    return "".join(out)


async def stat(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    form = None
    if args[:1] in (["-c"], ["--format"]) and len(args) > 1:
        form, args = args[1], args[2:]
    args = [a for a in args if not a.startswith("-")]
    if not args:
        return ctx.fail("Needs 1 argument")
    status = 0
    for path in args:
        node = ctx.device.fs.lookup(normalize(path, ctx.cwd))
        if node is None:
            status = ctx.fail(f"'{path}': No such file or directory")
            continue
        f = _stat_fields(path, node)
        if form is not None:
            ctx.out(_format(form, f) + "\n")
            continue
        ctx.out(
            f"  File: {path}\n  Size: {f['s']}\t Blocks: {f['b']}\t IO Blocks: 512\t{f['F']}\n"
            f"Device: fd05h/64773d\t Inode: {f['i']}\t Links: {f['h']}\n"
            f"Access: ({int(f['a'], 8):04o}/{f['A']})\tUid: ( 2000/   shell)\tGid: ( 2000/   shell)\n"
            f"Access: {f['x']}\nModify: {f['y']}\nChange: {f['z']}\n"
        )
    return status


async def uptime(ctx: CommandContext) -> int:
    minutes = int(_uptime_s() // 60)
    up = f"{minutes // 60}:{minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"
    now = time.strftime("%H:%M:%S", time.localtime())
    ctx.out(f" {now} up {up},  0 users,  load average: 0.52, 0.48, 0.41\n")
    return 0


_PARTITIONS = (  # filesystem, 1K-blocks, used, mounted on
    ("/dev/block/dm-0", 1_000_000, 995_000, "/"),
    ("tmpfs", 1_015_000, 1_200, "/dev"),
    ("/dev/block/dm-5", 6_000_000, 1_800_000, "/data"),
    ("/dev/fuse", 6_000_000, 1_800_000, "/storage/emulated"),
)


async def df(ctx: CommandContext) -> int:
    human = "-h" in ctx.args[1:]
    wanted = [normalize(a, ctx.cwd) for a in ctx.args[1:] if not a.startswith("-")]

    def size(kb: int) -> str:
        if not human:
            return str(kb)
        return f"{kb / 1024 / 1024:.1f}G" if kb >= 1024 * 1024 else f"{kb / 1024:.0f}M"

    rows = list(_PARTITIONS)
    if wanted:
        rows = []
        for path in wanted:
            mount = "/storage/emulated" if path.startswith(("/sdcard", "/storage")) else path
            match = max((p for p in _PARTITIONS if mount.startswith(p[3])), key=lambda p: len(p[3]))
            rows.append(match)
    ctx.out(f"Filesystem      {'Size' if human else '1K-blocks'}  Used Available Use% Mounted on\n")
    for name, total, used, mount in rows:
        free = total - used
        ctx.out(
            f"{name:<15} {size(total):>9} {size(used):>5} {size(free):>9} {used * 100 // total:>3}% {mount}\n"
        )
    return 0


# -- dumpsys meminfo / cpuinfo ----------------------------------------------------------------
def _app_rows(ctx: CommandContext) -> list[tuple[int, str]]:
    """(pid, name) of the app processes (the launcher, system UI and the running apps)."""
    return [(pid, name) for user, pid, _, name in ctx.device.processes() if user.startswith("u0_a")]


def _pss_kb(pid: int) -> int:
    return 38_000 + (pid * 7919) % 24_000


def dumpsys_meminfo(ctx: CommandContext, target: str | None) -> int:
    """`dumpsys meminfo [PKG|PID]`: Android 14's layout (the per-process table, App Summary and
    TOTAL lines performance scripts parse); the sizes are steady per process."""
    uptime_ms = int(_uptime_s() * 1000)
    ctx.out(f"Applications Memory Usage (in Kilobytes):\nUptime: {uptime_ms} Realtime: {uptime_ms}\n\n")
    rows = _app_rows(ctx)
    if target is None:
        ctx.out("Total PSS by process:\n")
        for pid, name in sorted(rows, key=lambda row: -_pss_kb(row[0])):
            ctx.out(f"{_pss_kb(pid):>10,}K: {name} (pid {pid})\n")
        used = sum(_pss_kb(pid) for pid, _ in rows)
        ctx.out(
            f"\nTotal RAM: {MEM_TOTAL_KB:,}K (status normal)\n Free RAM: {MEM_TOTAL_KB - used - 900_000:,}K\n"
        )
        ctx.out(f" Used RAM: {used + 900_000:,}K\n")
        return 0
    matches = [(pid, name) for pid, name in rows if name == target or str(pid) == target]
    if not matches:
        ctx.out(f"No process found for: {target}\n")
        return 0
    for pid, name in matches:
        total = _pss_kb(pid)
        native, java, code = total * 20 // 100, total * 14 // 100, total * 30 // 100
        graphics, stack = total * 12 // 100, 640
        other = total - native - java - code - graphics - stack
        rss = total * 2 + 12_000
        ctx.out(f"** MEMINFO in pid {pid} [{name}] **\n")
        ctx.out("                   Pss  Private  Private  SwapPss      Rss     Heap     Heap     Heap\n")
        ctx.out("                 Total    Dirty    Clean    Dirty    Total     Size    Alloc     Free\n")
        ctx.out("                ------   ------   ------   ------   ------   ------   ------   ------\n")
        table = (
            ("Native Heap", native, native - 60, 0, native + 2200, (14336, 11254, 3081)),
            ("Dalvik Heap", java, java - 90, 0, java + 4800, (6538, 3270, 3268)),
            ("TOTAL", total, total * 6 // 10, total * 2 // 10, rss, (20874, 14524, 6349)),
        )
        for label, pss, dirty, clean, rss_kb, heap in table:
            numbers = "".join(f"{n:>9}" for n in (pss, dirty, clean, 0, rss_kb, *heap))
            ctx.out(f"{label:>13}{numbers}\n")
        ctx.out("\n")
        ctx.out(" App Summary\n                       Pss(KB)                        Rss(KB)\n")
        ctx.out("                        ------                         ------\n")
        for label, value in (("Java Heap", java), ("Native Heap", native), ("Code", code), ("Stack", stack),
                             ("Graphics", graphics), ("Private Other", other)):  # fmt: skip
            ctx.out(f"{label + ':':>21} {value:>8}\n")
        ctx.out(f"{'System:':>21} {0:>8}\n\n")
        ctx.out(f"{'TOTAL:':>21} {total:>8}       TOTAL SWAP PSS:        0       TOTAL RSS: {rss:>8}\n\n")
    return 0


def dumpsys_cpuinfo(ctx: CommandContext) -> int:
    """`dumpsys cpuinfo`: the load and each app process's share, small and steady (no app code runs)."""
    ctx.out("Load: 0.52 / 0.48 / 0.41\nCPU usage from 5000ms to 0ms ago (2026-01-01 00:00:00.000 to now):\n")
    for pid, name in _app_rows(ctx):
        share = 0.1 + (pid % 7) / 10
        ctx.out(f"  {share:.1f}% {pid}/{name}: {share * 0.6:.1f}% user + {share * 0.4:.1f}% kernel\n")
    ctx.out("  3.1% 598/system_server: 2.0% user + 1.1% kernel\n")
    ctx.out("4.2% TOTAL: 2.6% user + 1.4% kernel + 0.2% iowait\n")
    return 0


# -- svc -----------------------------------------------------------------------------------
_SVC_SETTINGS = {"wifi": "wifi_on", "data": "mobile_data", "bluetooth": "bluetooth_on"}


async def svc(ctx: CommandContext) -> int:
    """`svc wifi|data|bluetooth enable|disable` (the global setting follows, as Android's does),
    `svc power stayon true|false|usb|ac|wireless`; anything else prints svc's usage."""
    args = ctx.args[1:]
    settings = ctx.device.settings["global"]
    if len(args) == 2 and args[0] in _SVC_SETTINGS and args[1] in ("enable", "disable"):
        settings[_SVC_SETTINGS[args[0]]] = "1" if args[1] == "enable" else "0"
        return 0
    if (
        len(args) == 3
        and args[:2] == ["power", "stayon"]
        and args[2] in ("true", "false", "usb", "ac", "wireless")
    ):
        settings["stay_on_while_plugged_in"] = {
            "true": "7",
            "false": "0",
            "ac": "1",
            "usb": "2",
            "wireless": "4",
        }[args[2]]
        return 0
    ctx.out(
        "Available commands:\n    help     Show information about the subcommands\n"
        "    power    Control the power manager\n    data     Control mobile data connectivity\n"
        "    wifi     Control the Wi-Fi manager\n    bluetooth Control Bluetooth service\n"
    )
    return 0 if args[:1] in ([], ["help"]) else 1


# -- content (the settings provider) ---------------------------------------------------------
def put_setting(ctx: CommandContext, namespace: str, key: str, value: str) -> None:
    """A setting written (`settings put`, `content insert|update`); the rotation lock turns the display."""
    ctx.device.settings.setdefault(namespace, {})[key] = value
    if (namespace, key) == ("system", "user_rotation") and value in ("0", "1", "2", "3"):
        ctx.device.phone.set_rotation(int(value))  # with auto-rotate off, as here


_SETTINGS_URI = re.compile(r"content://settings/(system|secure|global)$")
_WHERE_NAME = re.compile(r"""^\s*name\s*=\s*(?:'([^']*)'|"([^"]*)"|(\S+))\s*$""")


def _content_args(args: list[str]) -> tuple[dict[str, str], dict[str, str]] | str:
    """(--uri/--where/--projection/--sort values, --bind NAME:TYPE:VALUE values) or what is wrong."""
    options: dict[str, str] = {}
    binds: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--uri", "--where", "--projection", "--sort", "--user") and i + 1 < len(args):
            options[arg[2:]] = args[i + 1]
        elif arg == "--bind" and i + 1 < len(args):
            name, _, rest = args[i + 1].partition(":")
            kind, _, value = rest.partition(":")
            if not name or kind not in ("s", "i", "l", "f", "d", "b", "n"):
                return f"Invalid binding: {args[i + 1]} (NAME:TYPE:VALUE, TYPE one of s i l f d b n)"
            binds[name] = value
        else:
            return f"Unsupported argument: {arg}"
        i += 2
    return options, binds


async def content(ctx: CommandContext) -> int:
    """`content query|insert|update|delete --uri content://settings/NAMESPACE ...`: the settings
    provider, the one content provider this device has (rows `_id`, `name`, `value`)."""
    sub = ctx.args[1] if len(ctx.args) > 1 else ""
    parsed = _content_args(ctx.args[2:])
    if sub not in ("query", "insert", "update", "delete") or isinstance(parsed, str):
        ctx.err(f"{parsed if isinstance(parsed, str) else 'usage'}: content query|insert|update|delete "
                "--uri content://settings/system|secure|global [--where \"name='KEY'\"] [--bind name:s:KEY] "
                "[--bind value:s:VALUE]\n")  # fmt: skip
        return 1
    options, binds = parsed
    uri = _SETTINGS_URI.match(options.get("uri", ""))
    if uri is None:
        ctx.err(
            f"Error while accessing provider:{options.get('uri', '(no --uri)')}\n"
            "java.lang.IllegalArgumentException: Unknown URI (this virtual device's only provider is "
            "content://settings/system|secure|global)\n"
        )
        return 1
    store = ctx.device.settings.setdefault(uri.group(1), {})
    where = _WHERE_NAME.match(options["where"]) if "where" in options else None
    if "where" in options and where is None:
        ctx.err(
            f"Error while accessing provider:{options['uri']}\nonly --where \"name='KEY'\" is supported\n"
        )
        return 1
    name = next((g for g in where.groups() if g is not None), None) if where else binds.get("name")
    if sub == "query":
        rows = sorted(store.items()) if name is None else [(name, store[name])] if name in store else []
        columns = options.get("projection", "_id:name:value").split(":")
        if not rows:
            ctx.out("No result found.\n")
        for index, (key, value) in enumerate(rows):
            row_id = zlib.crc32(key.encode()) % 997 + 1
            cells = {"_id": str(row_id), "name": key, "value": value}
            ctx.out(f"Row: {index} " + ", ".join(f"{c}={cells.get(c, 'NULL')}" for c in columns) + "\n")
    elif sub in ("insert", "update"):
        if name is None or "value" not in binds:
            ctx.err(
                "content: give the setting's name (--bind name:s:KEY or --where) and --bind value:T:VALUE\n"
            )
            return 1
        put_setting(ctx, uri.group(1), name, binds["value"])
    elif name is not None:
        store.pop(name, None)
    return 0
