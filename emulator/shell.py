"""A small POSIX-like `sh` for the virtual device: enough for what adb clients send.

Supported: words with '…', "…" and backslash quoting; `$?`, `$$`, `$VAR`, `${VAR}`,
`$((EXPR))` arithmetic (`emulator.shell_arith`);
`VAR=value cmd` and bare `VAR=value`; `;`, `&&`, `||`, `|`, newlines, `#` comments;
redirections `>`, `>>`, `<`, `2>`, `2>&1`, `>&2` (to the device filesystem or
`/dev/null`); `*`/`?` globs in the last path component; `CMD &` runs in the background
(`$!` is its pid, which `kill` signals; `wait [PID]`), and a shell ends only when its
background jobs have (as adbd keeps the stream open while they hold its output);
`read [VAR...]` reads a line of the stream's input; `sh FILE [ARGS]` runs a script with
`$1`… and `$#`. Not supported (the shell says so): command substitution, `if`/`for`, functions.

Clients rely on `; echo X4EXIT:$?` (adbutils, uiautomator2) and on exit status 127 with
`/system/bin/sh: NAME: inaccessible or not found` for unknown commands.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from emulator.filesystem import FsError, normalize
from emulator.shell_arith import ArithError, arith_end, evaluate
from emulator.shell_io import CommandContext, InputReader, NullSink, Sink

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

log = logging.getLogger(__name__)

SH = "/system/bin/sh"
_OPERATORS = ("&&", "||", ">>", ">&", ";", "|", "&", "<", ">")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$(\?|\$|#|!|\d|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_?][A-Za-z0-9_]*\})")
_BIN_DIRS = ("/system/bin/", "/system/xbin/", "/vendor/bin/", "/bin/", "/usr/bin/")
# Quote kinds of a word part: unquoted parts are expanded and globbed, '"' parts only expanded.
_UNQUOTED, _SINGLE, _DOUBLE = "", "'", '"'


class ShellSyntaxError(Exception):
    pass


class ShellExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Word:
    parts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, text: str, quote: str) -> None:
        if self.parts and self.parts[-1][1] == quote:
            self.parts[-1] = (self.parts[-1][0] + text, quote)
        else:
            self.parts.append((text, quote))

    @property
    def plain(self) -> str | None:
        """The text when the word is a single unquoted part, else None."""
        if len(self.parts) == 1 and self.parts[0][1] == _UNQUOTED:
            return self.parts[0][0]
        return None


@dataclass(frozen=True)
class Op:
    text: str
    fd: int | None = None


@dataclass
class Redirect:
    fd: int
    op: str
    target: Word


@dataclass
class SimpleCommand:
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.assignments or self.words or self.redirects)


Pipeline = list[SimpleCommand]
AndOr = list[tuple[str, Pipeline]]


def tokenize(text: str) -> list[Word | Op]:
    """Split a command line into words and operators, keeping how each part was quoted."""
    tokens: list[Word | Op] = []
    word: Word | None = None
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal word
        if word is not None:
            tokens.append(word)
            word = None

    while i < n:
        c = text[i]
        if c in " \t\r":
            end_word()
            i += 1
        elif c == "\n":
            end_word()
            tokens.append(Op(";"))
            i += 1
        elif c == "#" and word is None:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unterminated quoted string")
            word = word or Word()
            word.add(text[i + 1 : end], _SINGLE)
            i = end + 1
        elif c == '"':
            word = word or Word()
            i = _lex_double(text, i + 1, word)
        elif c == "\\":
            word = word or Word()
            if i + 1 < n and text[i + 1] != "\n":
                word.add(text[i + 1], _SINGLE)
            i += 2
        elif text.startswith("$((", i):
            end = arith_end(text, i)
            if end < 0:
                raise ShellSyntaxError("unterminated $((")
            word = word or Word()
            word.add(text[i:end], _UNQUOTED)
            i = end
        elif c in ";&|<>":
            fd = None
            if c in "<>" and word is not None and word.plain is not None and word.plain.isdigit():
                fd, word = int(word.plain), None
            end_word()
            op = next(o for o in _OPERATORS if text.startswith(o, i))
            tokens.append(Op(op, fd))
            i += len(op)
        else:
            word = word or Word()
            start = i
            while i < n and text[i] not in " \t\r\n'\"\\;&|<>" and not text.startswith("$((", i):
                i += 1
            word.add(text[start:i], _UNQUOTED)
    end_word()
    return tokens


def _lex_double(text: str, i: int, word: Word) -> int:
    """Read a double-quoted part starting after the quote; return the index after the closing quote."""
    buf: list[str] = []
    while i < len(text):
        c = text[i]
        if c == '"':
            word.add("".join(buf), _DOUBLE)
            return i + 1
        if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`\n':
            word.add("".join(buf), _DOUBLE)
            buf = []
            if text[i + 1] != "\n":
                word.add(text[i + 1], _SINGLE)  # an escaped '$' must not expand
            i += 2
            continue
        buf.append(c)
        i += 1
    raise ShellSyntaxError("unterminated quoted string")


def parse(text: str) -> list[tuple[AndOr, bool]]:
    """The command line as a list of and-or lists of pipelines of simple commands, each with
    whether it runs in the background (`&`)."""
    program: list[tuple[AndOr, bool]] = []
    andor: AndOr = []
    pipeline: Pipeline = []
    command = SimpleCommand()
    link = ""
    tokens = tokenize(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if isinstance(token, Word):
            plain = token.parts[0][0] if token.parts and token.parts[0][1] == _UNQUOTED else ""
            name, eq, _ = plain.partition("=")
            if not command.words and eq and _NAME.fullmatch(name):
                value = Word([(plain[len(name) + 1 :], _UNQUOTED), *token.parts[1:]])
                command.assignments.append((name, value))
            else:
                command.words.append(token)
        elif token.text in ("<", ">", ">>", ">&"):
            if i >= len(tokens) or not isinstance(tokens[i], Word):
                raise ShellSyntaxError(f"unexpected end after '{token.text}'")
            target = tokens[i]
            assert isinstance(target, Word)
            i += 1
            fd = token.fd if token.fd is not None else (0 if token.text == "<" else 1)
            command.redirects.append(Redirect(fd, token.text, target))
        elif token.text == "|":
            if command.empty:
                raise ShellSyntaxError("unexpected '|'")
            pipeline.append(command)
            command = SimpleCommand()
        elif token.text in ("&&", "||"):
            if command.empty:
                raise ShellSyntaxError(f"unexpected '{token.text}'")
            pipeline.append(command)
            andor.append((link, pipeline))
            pipeline, command, link = [], SimpleCommand(), token.text
        else:  # ';' or '&'
            if command.empty:
                if pipeline or link:
                    raise ShellSyntaxError(f"unexpected '{token.text}'")
                continue
            pipeline.append(command)
            andor.append((link, pipeline))
            program.append((andor, token.text == "&"))
            andor, pipeline, command, link = [], [], SimpleCommand(), ""
    if not command.empty:
        pipeline.append(command)
        andor.append((link, pipeline))
    elif pipeline or link:
        raise ShellSyntaxError("unexpected end of file")
    if andor:
        program.append((andor, False))
    return program


class BackgroundJob:
    """`CMD &`: its task, and its pid for `kill` (any signal ends it, as the default actions do)."""

    def __init__(self, pid: int, name: str, task: asyncio.Future[int]) -> None:
        self.pid = pid
        self.name = name
        self.task = task
        self.killed_by: int | None = None

    def signal(self, signum: int) -> None:
        if signum not in (17, 18, 20, 23, 28):  # CHLD CONT TSTP URG WINCH are ignored by default
            self.killed_by = signum
            self.task.cancel()


class Shell:
    """One shell process: its variables, working folder and last exit status."""

    def __init__(
        self, device: VirtualDevice, env: dict[str, str] | None = None, read_input: InputReader | None = None
    ) -> None:
        self.device = device
        self.read_input = read_input
        self.vars: dict[str, str] = {
            "PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin:/vendor/bin",
            "HOME": "/",
            "SHELL": SH,
            "USER": "shell",
            "HOSTNAME": device.props.get("ro.product.device", "localhost"),
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "EXTERNAL_STORAGE": "/sdcard",
            "TMPDIR": "/data/local/tmp",
        }
        self.vars.update(env or {})
        self.status = 0
        self.cwd = "/"
        self.pid = device.allocate_pid()
        self.positional: list[str] = []  # $1 ... of a script run by `sh FILE ARGS`
        self.job_pid: int | None = None  # a background job's shell: the pid its command takes
        self.jobs: dict[int, BackgroundJob] = {}
        self.last_job: int | None = None
        self._input_rest = b""  # what `read` took from the stream's input past its line

    async def run(
        self, line: str, stdout: Sink, stderr: Sink, stdin: bytes = b"", wait_jobs: bool = True
    ) -> int:
        """Run a command line; the exit status of the last command (also kept in `status`).

        `wait_jobs`: the line is the whole script, so the shell ends once its background jobs have;
        an interactive prompt passes False and gets its prompt back while they run."""
        try:
            program = parse(line)
        except ShellSyntaxError as exc:
            stderr.write(f"{SH}: <stdin>[1]: syntax error: {exc}\n".encode())
            self.status = 2
            return self.status
        try:
            for andor, background in program:
                if background:
                    self._start_job(andor, stdout, stderr)
                else:
                    await self._run_andor(andor, stdout, stderr, stdin)
            if wait_jobs:
                status = self.status
                await self._wait_jobs(list(self.jobs))  # the stream stays open while they write to it
                self.status = status
        except ShellExit as exc:
            self.status = exc.status & 0xFF
        except asyncio.CancelledError:
            self.hang_up()
            raise
        await stdout.flush()
        await stderr.flush()
        return self.status

    def hang_up(self) -> None:
        """The terminal went away (the host closed the stream, or an interactive shell ended):
        SIGHUP ends the shell's background jobs (screenrecord finishes its file on it)."""
        for job in list(self.jobs.values()):
            job.signal(1)

    def _start_job(self, andor: AndOr, stdout: Sink, stderr: Sink) -> None:
        """`CMD &`: a subshell of its own (own status), with a pid that `kill` signals."""
        pid = self.device.allocate_pid()
        sub = Shell(self.device, env=dict(self.vars), read_input=None)
        sub.cwd, sub.positional, sub.job_pid = self.cwd, self.positional, pid
        name = self.expand(andor[0][1][0].words[0]) if andor[0][1][0].words else "sh"

        async def run() -> int:
            try:
                await sub._run_andor(andor, stdout, stderr, b"")
            except ShellExit as exc:
                return exc.status & 0xFF
            return sub.status

        job = BackgroundJob(pid, posixpath.basename(name), asyncio.ensure_future(run()))
        self.jobs[pid] = job
        self.device.signalable.setdefault(pid, job)

        def ended(_: object) -> None:
            if self.device.signalable.get(pid) is job:
                del self.device.signalable[pid]

        job.task.add_done_callback(ended)
        self.last_job = pid

    async def _wait_jobs(self, pids: list[int]) -> int:
        status = 0
        for pid in pids:
            job = self.jobs.pop(pid)
            try:
                status = await asyncio.shield(job.task)
            except asyncio.CancelledError:
                if not job.task.cancelled():
                    raise
                status = 128 + (job.killed_by or 1)
        return status

    async def _run_andor(self, andor: AndOr, stdout: Sink, stderr: Sink, stdin: bytes) -> None:
        for link, pipeline in andor:
            if (link == "&&" and self.status != 0) or (link == "||" and self.status == 0):
                continue
            self.status = await self._run_pipeline(pipeline, stdout, stderr, stdin)

    async def _run_pipeline(self, pipeline: Pipeline, stdout: Sink, stderr: Sink, stdin: bytes) -> int:
        status = 0
        data = stdin
        for index, command in enumerate(pipeline):
            last = index == len(pipeline) - 1
            sink = stdout if last else Sink()
            status = await self._run_simple(command, sink, stderr, data, streamed=index == 0)
            if not last:
                data = sink.getvalue()
        return status

    async def _run_simple(
        self, command: SimpleCommand, stdout: Sink, stderr: Sink, stdin: bytes, streamed: bool = False
    ) -> int:
        """Run one command; `streamed`: it is first in its pipeline, so the stream's input is its own."""
        try:
            assigned = {name: self.expand(value) for name, value in command.assignments}
            args: list[str] = []
            for word in command.words:
                args.extend(self.expand_glob(word))
        except ArithError as exc:
            stderr.write(f"{SH}: {exc}\n".encode())
            return 1
        if not args:
            self.vars.update(assigned)
            return 0
        out, err, files = stdout, stderr, []
        for redirect in command.redirects:
            target = self.expand(redirect.target)
            if redirect.op == ">&":
                sink = err if target == "2" else out
                if redirect.fd == 2:
                    err = sink
                else:
                    out = sink
            elif redirect.op == "<":
                try:
                    stdin = self.device.fs.read(normalize(target, self.cwd))
                except FsError as exc:
                    stderr.write(f"{SH}: can't open '{target}': {exc.strerror}\n".encode())
                    return 1
            else:
                sink = NullSink() if target == "/dev/null" else Sink()
                if target != "/dev/null":
                    files.append((normalize(target, self.cwd), redirect.op == ">>", sink))
                if redirect.fd == 2:
                    err = sink
                else:
                    out = sink
        redirected_in = any(redirect.op == "<" for redirect in command.redirects)
        ctx = CommandContext(
            device=self.device,
            args=args,
            env={**self.vars, **assigned},
            stdin=stdin,
            stdout=out,
            stderr=err,
            cwd=self.cwd,
            read_input=self.read_input if streamed and not redirected_in else None,
            pid=self.job_pid,
        )
        status = await self._call(ctx)
        for path, append, sink in files:
            try:
                if append:
                    self.device.fs.append(path, sink.getvalue())
                else:
                    self.device.fs.write(path, sink.getvalue())
            except FsError as exc:
                stderr.write(f"{SH}: can't create {path}: {exc.strerror}\n".encode())
                status = 1
        await stdout.flush()
        await stderr.flush()
        return status

    async def _call(self, ctx: CommandContext) -> int:
        from emulator.shell_commands import COMMANDS  # the command table imports this module's helpers

        name = ctx.args[0]
        for prefix in _BIN_DIRS:
            if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                name = name[len(prefix) :]
        builtin = getattr(self, f"_builtin_{name}", None) if _NAME.fullmatch(name) else None
        if builtin is not None:
            result: int = await builtin(ctx)
            return result
        command = None if name in ctx.device.faults.missing_commands else COMMANDS.get(name)
        if command is None:
            ctx.err(f"{SH}: {ctx.args[0]}: inaccessible or not found\n")
            return 127
        try:
            return await command(ctx)
        except (ShellExit, ShellSyntaxError):
            raise
        except Exception as exc:  # a bug in one command must not kill the adb stream
            log.exception("shell command %r failed", ctx.args)
            ctx.err(f"{name}: {type(exc).__name__}: {exc}\n")
            return 1

    # -- expansion ------------------------------------------------------------------
    def expand(self, word: Word) -> str:
        return "".join(text if quote == _SINGLE else self._expand_vars(text) for text, quote in word.parts)

    def _expand_vars(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1).strip("{}")
            if name == "?":
                return str(self.status)
            if name == "$":
                return str(self.pid)
            if name == "#":
                return str(len(self.positional))
            if name == "!":
                return str(self.last_job) if self.last_job is not None else ""
            if name == "0":
                return SH
            if name.isdigit():
                return self.positional[int(name) - 1] if 0 < int(name) <= len(self.positional) else ""
            return self.vars.get(name, "")

        parts: list[str] = []
        i = 0
        while (start := text.find("$((", i)) >= 0:
            end = arith_end(text, start)
            if end < 0:
                raise ArithError(f"{text[start:]}: missing '))'")
            parts.append(_VAR.sub(value, text[i:start]))
            expression = _VAR.sub(value, text[start + 3 : end - 2])
            try:
                parts.append(str(evaluate(expression, self.vars)))
            except ArithError as exc:
                raise ArithError(f"{expression.strip()}: {exc}") from exc
            i = end
        parts.append(_VAR.sub(value, text[i:]))
        return "".join(parts)

    def expand_glob(self, word: Word) -> list[str]:
        """The word expanded; an unquoted `*`/`?` in the last component lists matching files."""
        text = self.expand(word)
        if not any(quote == _UNQUOTED and ("*" in t or "?" in t) for t, quote in word.parts):
            return [text]
        folder, pattern = posixpath.split(text)
        if any(c in folder for c in "*?"):
            return [text]
        try:
            entries = self.device.fs.listdir(normalize(folder or ".", self.cwd))
        except FsError:
            return [text]
        matches = [
            posixpath.join(folder, name) if folder else name
            for name, _ in entries
            if fnmatch.fnmatchcase(name, pattern) and (pattern.startswith(".") or not name.startswith("."))
        ]
        return matches or [text]

    # -- builtins (they change the shell itself) ---------------------------------------
    async def _builtin_cd(self, ctx: CommandContext) -> int:
        target = normalize(ctx.args[1] if len(ctx.args) > 1 else "/", self.cwd)
        if not self.device.fs.is_dir(target):
            return ctx.fail(f"{target}: No such file or directory", 2)
        self.cwd = target
        return 0

    async def _builtin_export(self, ctx: CommandContext) -> int:
        for arg in ctx.args[1:]:
            name, eq, value = arg.partition("=")
            if eq:
                self.vars[name] = value
        return 0

    async def _builtin_unset(self, ctx: CommandContext) -> int:
        for name in ctx.args[1:]:
            self.vars.pop(name, None)
        return 0

    async def _builtin_exit(self, ctx: CommandContext) -> int:
        status = int(ctx.args[1]) if len(ctx.args) > 1 and ctx.args[1].lstrip("-").isdigit() else self.status
        await ctx.flush()
        raise ShellExit(status)

    async def _builtin_sh(self, ctx: CommandContext) -> int:
        """`sh -c CMD` in a subshell (own variables and folder); `sh FILE [ARGS]` runs the file with
        `$1`...; `sh` alone runs stdin as a script. The subshell reads the stream's input."""
        args = ctx.args[1:]
        positional: list[str] = []
        if "-c" in args and args.index("-c") + 1 < len(args):
            script = args[args.index("-c") + 1]
        elif args and not args[0].startswith("-"):
            path = normalize(args[0], self.cwd)
            try:
                script = self.device.fs.read(path).decode("utf-8", "replace")
            except FsError:
                ctx.err(f"{SH}: {args[0]}: No such file or directory\n")  # mksh's words
                return 127
            positional = args[1:]
        else:
            script = ctx.stdin.decode("utf-8", "replace")
        sub = Shell(self.device, env=dict(self.vars), read_input=ctx.read_input)
        sub.cwd, sub.positional = self.cwd, positional
        return await sub.run(script, ctx.stdout, ctx.stderr)

    async def _builtin_wait(self, ctx: CommandContext) -> int:
        """`wait [PID...]`: until those background jobs (all without PIDs) end; the last one's status."""
        wanted = [int(a) for a in ctx.args[1:] if a.isdigit()]
        unknown = [pid for pid in wanted if pid not in self.jobs]
        if unknown:
            return ctx.fail(f"{unknown[0]}: no such job", 127)
        return await self._wait_jobs(wanted or list(self.jobs))

    async def _builtin_read(self, ctx: CommandContext) -> int:
        """`read [-r] [VAR...]`: one line of input (the stream's own, or a pipe's) split into VARs
        (REPLY without any); status 1 at the end of the input."""
        names = [a for a in ctx.args[1:] if not a.startswith("-")] or ["REPLY"]
        line, ended = b"", False
        if ctx.read_input is not None:
            while not line.endswith(b"\n"):
                try:
                    line += await ctx.read_input(1)
                except EOFError:
                    ended = True
                    break
        else:
            data = ctx.stdin
            line, newline, _ = data.partition(b"\n")
            line, ended = line + newline, not newline
        fields = line.decode("utf-8", "replace").rstrip("\n").split(None, len(names) - 1)
        for index, name in enumerate(names):
            self.vars[name] = fields[index] if index < len(fields) else ""
        return 1 if ended and not line else 0

    async def _builtin_exec(self, ctx: CommandContext) -> int:
        """`exec CMD ...` (as `adb logcat` sends it): run CMD; the shell ends with its status."""
        if len(ctx.args) == 1:
            return 0
        status = await self._call(replace(ctx, args=ctx.args[1:]))
        await ctx.flush()
        raise ShellExit(status)

    async def _builtin_pwd(self, ctx: CommandContext) -> int:
        ctx.out(self.cwd + "\n")
        return 0
