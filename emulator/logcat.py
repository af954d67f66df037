"""The device's log and the tools that use it: `log` writes to it, `logcat` reads it.

    log [-p PRIORITY] [-t TAG] MESSAGE...          (priority v d i w e f, default i; tag "log")
    logcat [-c|--clear] [-d] [-t N] [-v FORMAT] [-s] [TAG:LEVEL ...]

`logcat` prints the buffer (`-d` then ends; without it, it follows new lines until the
stream closes); `-v` takes `threadtime` (the default), `time`, `brief`, `tag`, `process`,
`raw`; filter specs are `TAG:LEVEL` and `*:LEVEL`, `-s` silences every tag not named.
Only what `log` wrote and the system's own few lines are there (no app writes to it); while a
`logcat` follows, healthd logs the battery each second nothing else was logged.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from emulator.shell_io import CommandContext

_LEVELS = "VDIWEF"
_PRIORITIES = {"v": "V", "verbose": "V", "d": "D", "debug": "D", "i": "I", "info": "I", "w": "W", "warn": "W"}
_PRIORITIES |= {"e": "E", "error": "E", "f": "F", "fatal": "F", "a": "F", "assert": "F"}
_FORMATS = {"threadtime", "time", "brief", "tag", "process", "raw", "long"}
_MAX_ENTRIES = 5000
# A phone's log is never quiet for long: a following `logcat` sees healthd's battery line when
# nothing else was logged for this long (clients that read it line by line wait for a line to stop).
HEARTBEAT_S = 1.0
_HEALTHD_PID = 281


@dataclass(frozen=True)
class LogEntry:
    when: float
    pid: int
    tid: int
    level: str
    tag: str
    message: str

    def format(self, style: str) -> str:
        stamp = (
            time.strftime("%m-%d %H:%M:%S", time.localtime(self.when))
            + f".{int(self.when * 1000) % 1000:03d}"
        )
        if style == "time":
            return f"{stamp} {self.level}/{self.tag:<8}({self.pid:5d}): {self.message}\n"
        if style == "brief":
            return f"{self.level}/{self.tag:<8}({self.pid:5d}): {self.message}\n"
        if style == "tag":
            return f"{self.level}/{self.tag}: {self.message}\n"
        if style == "process":
            return f"{self.level}({self.pid:5d}) {self.message}  ({self.tag})\n"
        if style == "raw":
            return f"{self.message}\n"
        if style == "long":
            return f"[ {stamp} {self.pid:5d}:{self.tid:5d} {self.level}/{self.tag} ]\n{self.message}\n\n"
        return f"{stamp} {self.pid:5d} {self.tid:5d} {self.level} {self.tag:<8}: {self.message}\n"


class LogBuffer:
    """The main log: entries in order, and the followers (`logcat` without `-d`) woken on each new one."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._added = asyncio.Event()  # set (and replaced) on each add
        self.add(598, "I", "ActivityManager", "System now ready")

    def add(self, pid: int, level: str, tag: str, message: str) -> None:
        for line in message.split("\n"):
            self.entries.append(LogEntry(time.time(), pid, pid, level, tag, line))
        del self.entries[:-_MAX_ENTRIES]
        self._added.set()
        self._added = asyncio.Event()

    def clear(self) -> None:
        self.entries.clear()

    def after(self, entry: LogEntry | None) -> list[LogEntry]:
        """The entries newer than `entry` (all of them when it is gone from the buffer)."""
        for index in range(len(self.entries) - 1, -1, -1):
            if self.entries[index] is entry:
                return self.entries[index + 1 :]
        return list(self.entries)

    async def wait_after(self, entry: LogEntry | None) -> None:
        """Until an entry newer than `entry` is in the buffer."""
        while not self.entries or self.entries[-1] is entry:
            await self._added.wait()


async def log(ctx: CommandContext) -> int:
    args = ctx.args[1:]
    level, tag = "I", "log"
    while args and args[0].startswith("-") and len(args[0]) > 1:
        option = args.pop(0)
        if option in ("-p", "-t") and args:
            value = args.pop(0)
            if option == "-t":
                tag = value
            elif value.lower() in _PRIORITIES:
                level = _PRIORITIES[value.lower()]
            else:
                return ctx.fail(f"unknown priority '{value}' (use one of v d i w e f)")
        elif option == "--":
            break
        else:
            ctx.err("usage: log [-p PRIORITY] [-t TAG] MESSAGE...\n")
            return 1
    if not args:
        ctx.err("usage: log [-p PRIORITY] [-t TAG] MESSAGE...\n")
        return 1
    ctx.device.log.add(ctx.device.allocate_pid(), level, tag, " ".join(args))
    return 0


def _visible(entry: LogEntry, specs: dict[str, str], default: str) -> bool:
    wanted = specs.get(entry.tag, default)
    return wanted != "S" and _LEVELS.index(entry.level) >= _LEVELS.index(wanted)


async def logcat(ctx: CommandContext) -> int:
    """`-c` clears, `-d` dumps and ends, without `-d` it follows until the stream closes."""
    args = ctx.args[1:]
    style, dump, tail, silent = "threadtime", False, 0, False
    specs: dict[str, str] = {}
    while args:
        arg = args.pop(0)
        if arg in ("-c", "--clear"):
            ctx.device.log.clear()
            return 0
        if arg == "-d":
            dump = True
        elif arg == "-s":
            silent = True
        elif arg in ("-v", "--format") and args:
            style = args.pop(0)
            if style not in _FORMATS:
                ctx.err(f'Invalid parameter "{style}" to -v\n')
                return 1
        elif arg in ("-t", "-T") and args:
            count = args.pop(0)
            if not count.isdigit():
                return ctx.fail(f'-t "{count}" is not a count of lines')
            tail, dump = int(count), dump or arg == "-t"
        elif arg in ("-b", "--buffer", "-e", "--regex", "-f", "--file", "--pid") and args:
            args.pop(0)  # one buffer here; no files
        elif arg.startswith("-"):
            continue
        elif ":" in arg and arg.rsplit(":", 1)[1].upper()[:1] in _LEVELS + "S":
            tag, level = arg.rsplit(":", 1)
            specs[tag] = level.upper()[:1]
        else:
            specs[arg] = "V"
    default = specs.pop("*", "S" if silent else "V")
    buffer = ctx.device.log
    shown = [e for e in buffer.entries if _visible(e, specs, default)]
    ctx.out("--------- beginning of main\n")
    ctx.out("".join(e.format(style) for e in (shown[-tail:] if tail else shown)))
    if dump:
        return 0
    last = buffer.entries[-1] if buffer.entries else None
    while True:
        await ctx.flush()
        try:
            await asyncio.wait_for(buffer.wait_after(last), HEARTBEAT_S)
        except TimeoutError:
            battery = ctx.device.battery
            state = f"l={battery.level} v=5000 t=25.0 h=2 st={battery.current_status()}"
            buffer.add(_HEALTHD_PID, "I", "healthd", f"battery {state} chg={'a' if battery.ac else ''}")
        fresh = buffer.after(last)
        last = buffer.entries[-1]
        ctx.out("".join(e.format(style) for e in fresh if _visible(e, specs, default)))
