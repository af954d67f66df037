"""`kill` and `pkill` as toybox has them, for the processes of the shell user that take signals.

    kill [-s SIGNAL | -SIGNAL] PID...      (the default signal is TERM; `kill -l` lists them)
    pkill [-SIGNAL] PATTERN                (names matching the regular expression)

Only the shell's own long-running commands (`screenrecord`) can be signalled; the system's and
the apps' processes answer `Operation not permitted`, as they do to the shell user on a phone.
"""

from __future__ import annotations

import re
import signal as signals

from emulator.shell_io import CommandContext

_NAMES = {s.name.removeprefix("SIG"): int(s) for s in signals.Signals if not s.name.startswith("SIG_")}


def _signal_number(text: str) -> int | None:
    """`2`, `INT` or `SIGINT` → 2; None when it is no signal."""
    if text.isdigit():
        return int(text) if int(text) < 65 else None
    return _NAMES.get(text.upper().removeprefix("SIG"))


def _split_signal(ctx: CommandContext) -> tuple[int, list[str]] | int:
    """The signal asked for (TERM by default) and the operands, or the exit status of a usage error."""
    args = ctx.args[1:]
    signum = int(signals.SIGTERM)
    if args[:1] == ["-s"] and len(args) > 1:
        number, args = _signal_number(args[1]), args[2:]
    elif args and args[0].startswith("-") and len(args[0]) > 1 and args[0] != "--":
        number, args = _signal_number(args[0][1:]), args[1:]
    else:
        number = signum
    if number is None:
        return ctx.fail("unknown signal")
    return number, [a for a in args if a != "--"]


async def kill(ctx: CommandContext) -> int:
    if ctx.args[1:2] == ["-l"]:
        ordered = sorted(_NAMES.items(), key=lambda item: item[1])
        ctx.out("".join(f"{number:2}) {name}\n" for name, number in ordered))
        return 0
    parsed = _split_signal(ctx)
    if isinstance(parsed, int):
        return parsed
    signum, pids = parsed
    if not pids:
        return ctx.fail("Need 1 argument")
    status = 0
    known = {pid for _, pid, _, _ in ctx.device.processes()}
    for text in pids:
        pid = int(text) if text.isdigit() else None
        process = ctx.device.signalable.get(pid) if pid is not None else None
        if process is not None:
            process.signal(signum)
        elif pid is not None and pid in known:
            status = ctx.fail(f"{text}: Operation not permitted")
        else:
            status = ctx.fail(f"{text}: No such process")
    return status


async def pkill(ctx: CommandContext) -> int:
    parsed = _split_signal(ctx)
    if isinstance(parsed, int):
        return parsed
    signum, patterns = parsed
    if len(patterns) != 1:
        return ctx.fail("Need 1 argument")
    try:
        pattern = re.compile(patterns[0])
    except re.error as exc:
        return ctx.fail(f"bad regex '{patterns[0]}': {exc}")
    matched = [p for p in list(ctx.device.signalable.values()) if pattern.search(p.name)]
    for process in matched:
        process.signal(signum)
    return 0 if matched else 1
