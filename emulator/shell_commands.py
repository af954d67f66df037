"""The toybox side of the virtual device's shell: files and text tools, and the command table.

`COMMANDS` maps a command name to its implementation; it holds these tools and the
Android ones from `emulator.android_commands`. `toybox NAME ...` runs NAME from the
same table, as on a phone.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
import stat
import time
from dataclasses import replace

from emulator import shell_tools
from emulator.android_commands import COMMANDS as ANDROID_COMMANDS
from emulator.filesystem import DirNode, FileNode, FsError, normalize
from emulator.screenrecord import screenrecord
from emulator.shell_io import Command, CommandContext
from emulator.signals import kill, pkill


def _split_flags(args: list[str], known: str) -> tuple[set[str], list[str]]:
    """Single-letter flags (`-rf` = r, f) and the remaining operands; `--` ends flags."""
    flags: set[str] = set()
    rest: list[str] = []
    done = False
    for arg in args:
        if not done and arg == "--":
            done = True
        elif not done and arg.startswith("-") and len(arg) > 1 and all(c in known for c in arg[1:]):
            flags.update(arg[1:])
        else:
            rest.append(arg)
    return flags, rest


async def echo(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    newline, escapes = True, False
    while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = text.encode().decode("unicode_escape")
    ctx.out(text + ("\n" if newline else ""))
    return 0


async def printf(ctx: CommandContext) -> int:
    if len(ctx.args) < 2:
        return ctx.fail("needs 1 argument")
    fmt = ctx.args[1].encode().decode("unicode_escape")
    values = iter(ctx.args[2:])
    ctx.out(re.sub(r"%[sd]", lambda _m: next(values, ""), fmt).replace("%%", "%"))
    return 0


async def true(ctx: CommandContext) -> int:
    return 0


async def false(ctx: CommandContext) -> int:
    return 1


async def sleep(ctx: CommandContext) -> int:
    try:
        seconds = sum(float(a.rstrip("s")) for a in ctx.args[1:])
    except ValueError:
        return ctx.fail(f"invalid number '{' '.join(ctx.args[1:])}'")
    await asyncio.sleep(seconds)
    return 0


def _mode_string(mode: int) -> str:
    kind = "d" if stat.S_ISDIR(mode) else "-"
    bits = "".join(
        ch if mode & mask else "-"
        for ch, mask in zip("rwxrwxrwx", (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 4, 2, 1), strict=True)
    )
    return kind + bits


def _long_line(name: str, node: FileNode | DirNode) -> str:
    size = 4096 if isinstance(node, DirNode) else len(node.data)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(node.mtime))
    links = 2 if isinstance(node, DirNode) else 1
    return f"{_mode_string(node.mode)} {links} shell shell {size:>8} {stamp} {name}\n"


async def ls(ctx: CommandContext) -> int:
    flags, paths = _split_flags(ctx.args[1:], "laAd1RhtrsSF")
    fs = ctx.device.fs
    status = 0
    paths = paths or ["."]
    for index, path in enumerate(paths):
        full = normalize(path, ctx.cwd)
        node = fs.lookup(full)
        if node is None:
            ctx.err(f"ls: {path}: No such file or directory\n")
            status = 1
            continue
        if isinstance(node, FileNode) or "d" in flags:
            ctx.out(_long_line(path, node) if "l" in flags else path + "\n")
            continue
        if len(paths) > 1:
            ctx.out(("\n" if index else "") + f"{path}:\n")
        entries = [
            (n, c) for n, c in fs.listdir(full) if "a" in flags or "A" in flags or not n.startswith(".")
        ]
        if "l" in flags:
            ctx.out(f"total {sum(len(c.data) for _, c in entries if isinstance(c, FileNode)) // 1024}\n")
            ctx.out("".join(_long_line(n, c) for n, c in entries))
        else:
            ctx.out("".join(n + "\n" for n, _ in entries))
    return status


async def cat(ctx: CommandContext) -> int:
    paths = [a for a in ctx.args[1:] if a != "-u"]
    if not paths:
        ctx.out(ctx.stdin)
        return 0
    status = 0
    for path in paths:
        if path == "-":
            ctx.out(ctx.stdin)
            continue
        try:
            ctx.out(ctx.device.fs.read(normalize(path, ctx.cwd)))
        except FsError as exc:
            status = ctx.fail(f"{path}: {exc.strerror}")
    return status


async def rm(ctx: CommandContext) -> int:
    flags, paths = _split_flags(ctx.args[1:], "rRfiv")
    if not paths and "f" not in flags:
        return ctx.fail("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            ctx.device.fs.remove(normalize(path, ctx.cwd), recursive="r" in flags or "R" in flags)
        except FsError as exc:
            if exc.strerror == "Is a directory":
                status = ctx.fail(f"{path}: is a directory")
            elif "f" not in flags or exc.strerror != "No such file or directory":  # -f hides only missing
                status = ctx.fail(f"{path}: {exc.strerror}")
    return status


async def rmdir(ctx: CommandContext) -> int:
    status = 0
    for path in ctx.args[1:]:
        try:
            ctx.device.fs.rmdir(normalize(path, ctx.cwd))
        except FsError as exc:
            status = ctx.fail(f"{path}: {exc.strerror}")
    return status


async def mkdir(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    mode = 0o771
    if "-m" in args:
        index = args.index("-m")
        mode = int(args[index + 1], 8) if index + 1 < len(args) else mode
        del args[index : index + 2]
    flags, paths = _split_flags(args, "pv")
    if not paths:
        return ctx.fail("Needs 1 argument")
    status = 0
    for path in paths:
        try:
            ctx.device.fs.mkdir(normalize(path, ctx.cwd), parents="p" in flags, mode=mode)
        except FsError as exc:
            status = ctx.fail(f"{path}: {exc.strerror}")
    return status


async def touch(ctx: CommandContext) -> int:
    _, paths = _split_flags(ctx.args[1:], "acm")
    fs = ctx.device.fs
    status = 0
    for path in paths:
        full = normalize(path, ctx.cwd)
        node = fs.lookup(full)
        try:
            if node is None:
                fs.write(full, b"")
            else:
                node.mtime = int(time.time())
        except FsError as exc:
            status = ctx.fail(f"{path}: {exc.strerror}")
    return status


async def chmod(ctx: CommandContext) -> int:
    _, args = _split_flags(ctx.args[1:], "R")
    if len(args) < 2 or not re.fullmatch(r"[0-7]{1,4}", args[0]):
        return ctx.fail("usage: chmod OCTAL-MODE FILE... (symbolic modes are not supported here)")
    status = 0
    for path in args[1:]:
        node = ctx.device.fs.lookup(normalize(path, ctx.cwd))
        if node is None:
            status = ctx.fail(f"{path}: No such file or directory")
        else:
            node.mode = stat.S_IFMT(node.mode) | int(args[0], 8)
    return status


async def cp(ctx: CommandContext) -> int:
    _, args = _split_flags(ctx.args[1:], "rRfpa")
    if len(args) < 2:
        return ctx.fail("Needs 2 arguments")
    fs = ctx.device.fs
    target = normalize(args[-1], ctx.cwd)
    status = 0
    for source in args[:-1]:
        try:
            node = fs.lookup(normalize(source, ctx.cwd))
            if not isinstance(node, FileNode):
                raise FsError(source, "No such file or directory" if node is None else "Is a directory")
            dest = posixpath.join(target, posixpath.basename(source)) if fs.is_dir(target) else target
            fs.write(dest, node.data, mode=node.mode)
            if ctx.name == "mv":
                fs.remove(normalize(source, ctx.cwd))
        except FsError as exc:
            status = ctx.fail(f"{source}: {exc.strerror}")
    return status


async def md5sum(ctx: CommandContext) -> int:
    paths = [a for a in ctx.args[1:] if not a.startswith("-") or a == "-"]
    if not paths:
        ctx.out(f"{hashlib.md5(ctx.stdin).hexdigest()}  -\n")
        return 0
    status = 0
    for path in paths:
        try:
            data = ctx.stdin if path == "-" else ctx.device.fs.read(normalize(path, ctx.cwd))
        except FsError as exc:
            status = ctx.fail(f"{path}: {exc.strerror}")
            continue
        algorithm = "sha1" if ctx.name == "sha1sum" else "md5"
        ctx.out(f"{hashlib.new(algorithm, data).hexdigest()}  {path}\n")
    return status


async def toybox(ctx: CommandContext) -> int:
    if len(ctx.args) < 2:
        ctx.out(" ".join(sorted(COMMANDS)) + "\n")
        return 0
    command = COMMANDS.get(ctx.args[1])
    if command is None:
        ctx.err(f"toybox: {ctx.args[1]}: not found\n")
        return 127
    return await command(replace(ctx, args=ctx.args[1:]))


async def grep(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    patterns: list[str] = []
    while "-e" in args:
        index = args.index("-e")
        patterns.append(args[index + 1] if index + 1 < len(args) else "")
        del args[index : index + 2]
    flags, rest = _split_flags(args, "ivcqEFwnlHhso")
    if not patterns:
        if not rest:
            return ctx.fail("no pattern", 2)
        patterns, rest = [rest[0]], rest[1:]
    sources = rest or ["-"]
    regexes = [
        re.compile(
            rf"\b{re.escape(p) if 'F' in flags else p}\b"
            if "w" in flags
            else (re.escape(p) if "F" in flags else p),
            re.IGNORECASE if "i" in flags else 0,
        )
        for p in patterns
    ]
    found = 0
    for source in sources:
        try:
            data = ctx.stdin if source == "-" else ctx.device.fs.read(normalize(source, ctx.cwd))
        except FsError as exc:
            ctx.fail(f"{source}: {exc.strerror}", 2)
            continue
        lines = data.decode("utf-8", "replace").splitlines()
        hits = [line for line in lines if any(r.search(line) for r in regexes) != ("v" in flags)]
        found += len(hits)
        if "q" in flags:
            continue
        if "c" in flags:
            ctx.out(f"{len(hits)}\n")
        else:
            prefix = f"{source}:" if len(sources) > 1 and "h" not in flags else ""
            ctx.out("".join(f"{prefix}{line}\n" for line in hits))
    return 0 if found else 1


async def head_tail(ctx: CommandContext) -> int:
    """`head`/`tail` with `-n N`, `-N` or `-c BYTES`, on a file or stdin."""
    args = ctx.args[1:]
    count, unit = 10, "n"
    for flag in ("-n", "-c"):
        if flag in args:
            index = args.index(flag)
            if index + 1 >= len(args) or not args[index + 1].lstrip("+").isdigit():
                return ctx.fail(f"{flag} needs a number")
            count, unit = int(args[index + 1].lstrip("+")), flag[1]
            del args[index : index + 2]
    if args and re.fullmatch(r"-\d+", args[0]):
        count, args = int(args[0][1:]), args[1:]
    try:
        data = ctx.device.fs.read(normalize(args[0], ctx.cwd)) if args else ctx.stdin
    except FsError as exc:
        return ctx.fail(f"{args[0]}: {exc.strerror}")
    if unit == "c":
        ctx.out(data[:count] if ctx.name == "head" else data[len(data) - count :])
        return 0
    lines = data.splitlines(keepends=True)
    ctx.out(b"".join(lines[:count] if ctx.name == "head" else lines[-count:] if count else []))
    return 0


async def wc(ctx: CommandContext) -> int:
    flags, paths = _split_flags(ctx.args[1:], "lwc")
    try:
        data = ctx.device.fs.read(normalize(paths[0], ctx.cwd)) if paths else ctx.stdin
    except FsError as exc:
        return ctx.fail(f"{paths[0]}: {exc.strerror}")
    counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data)}
    chosen = [str(counts[k]) for k in "lwc" if k in flags] or [str(counts[k]) for k in "lwc"]
    ctx.out(" ".join(chosen) + (f" {paths[0]}" if paths else "") + "\n")
    return 0


async def id_(ctx: CommandContext) -> int:
    ctx.out(
        "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
        "1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats) context=u:r:shell:s0\n"
    )
    return 0


async def whoami(ctx: CommandContext) -> int:
    ctx.out("shell\n")
    return 0


async def uname(ctx: CommandContext) -> int:
    flags, _ = _split_flags(ctx.args[1:], "asnrvmo")
    parts = {
        "s": "Linux",
        "n": "localhost",
        "r": "6.1.23-android14-4-00257-g7e35917775b8-ab9964412",
        "v": "#1 SMP PREEMPT Mon Apr 17 20:50:58 UTC 2023",
        "m": "x86_64",
        "o": "Toybox",
    }
    keys = "snrvmo" if "a" in flags else [k for k in "snrvmo" if k in flags] or ["s"]
    ctx.out(" ".join(parts[k] for k in keys) + "\n")
    return 0


async def date(ctx: CommandContext) -> int:
    fmt = next((a[1:] for a in ctx.args[1:] if a.startswith("+")), "%a %b %d %H:%M:%S UTC %Y")
    ctx.out(time.strftime(fmt.replace("%N", "000000000"), time.gmtime()) + "\n")
    return 0


async def which(ctx: CommandContext) -> int:
    status = 0
    for name in ctx.args[1:]:
        if (name in COMMANDS or name == "sh") and name not in ctx.device.faults.missing_commands:
            ctx.out(f"/system/bin/{name}\n")
        else:
            status = 1
    return status


COMMANDS: dict[str, Command] = {
    "echo": echo,
    "printf": printf,
    "true": true,
    "false": false,
    "sleep": sleep,
    "ls": ls,
    "cat": cat,
    "rm": rm,
    "rmdir": rmdir,
    "mkdir": mkdir,
    "touch": touch,
    "chmod": chmod,
    "cp": cp,
    "mv": cp,
    "md5sum": md5sum,
    "sha1sum": md5sum,
    "toybox": toybox,
    "grep": grep,
    "head": head_tail,
    "tail": head_tail,
    "wc": wc,
    "id": id_,
    "whoami": whoami,
    "uname": uname,
    "date": date,
    "which": which,
    "kill": kill,
    "pkill": pkill,
    "screenrecord": screenrecord,
    "test": shell_tools.test,
    "[": shell_tools.test,
    "stat": shell_tools.stat,
    "uptime": shell_tools.uptime,
    "df": shell_tools.df,
    "svc": shell_tools.svc,
    "content": shell_tools.content,
    **ANDROID_COMMANDS,
}
