"""What a shell command sees: its arguments, stdin, stdout/stderr sinks, the device and the shell.

Commands are `async def name(ctx: CommandContext) -> int` (the exit status). They write
with `ctx.out(...)`/`ctx.err(...)`; output is buffered and sent when the command ends,
or earlier with `await ctx.flush()` (a long-running command such as `app_process`
flushes its banner before it waits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emulator.transport import AdbStream

if TYPE_CHECKING:
    from emulator.device import VirtualDevice


class Sink:
    """Where output goes. The base class collects bytes (used for pipes and redirections)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data

    async def flush(self) -> None:
        """Send what was written so far (no-op for a collecting sink)."""

    def getvalue(self) -> bytes:
        return bytes(self.buffer)


class NullSink(Sink):
    def write(self, data: bytes) -> None:
        pass


class StreamSink(Sink):
    """Raw bytes to an adb stream (shell v1, exec:)."""

    def __init__(self, stream: AdbStream) -> None:
        super().__init__()
        self.stream = stream

    async def flush(self) -> None:
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            await self.stream.write(data)


class ShellV2Sink(Sink):
    """Shell protocol v2 packets (`u8 id, u32le length, data`) of one kind (1 stdout, 2 stderr)."""

    def __init__(self, stream: AdbStream, packet_id: int) -> None:
        super().__init__()
        self.stream = stream
        self.packet_id = packet_id

    async def flush(self) -> None:
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            await self.stream.write(v2_packet(self.packet_id, data))


def v2_packet(packet_id: int, data: bytes) -> bytes:
    return bytes([packet_id]) + len(data).to_bytes(4, "little") + data


InputReader = Callable[[int], Awaitable[bytes]]
"""Reads exactly n bytes the host streams to the command; raises `EOFError` if it stops first."""


@dataclass
class CommandContext:
    """One run of one simple command."""

    device: VirtualDevice
    args: list[str]
    env: dict[str, str]
    stdin: bytes
    stdout: Sink
    stderr: Sink
    cwd: str = "/"
    # The stream's own input, for a command that reads what the host streams to it
    # (`cmd package install -S SIZE`); None when there is none (v2 shells, pipes, `<`).
    read_input: InputReader | None = None
    # The pid a command that shows in `ps` takes: a background job's (`$!`), else None (its own).
    pid: int | None = None

    @property
    def name(self) -> str:
        return self.args[0]

    def out(self, text: str | bytes) -> None:
        self.stdout.write(text.encode() if isinstance(text, str) else text)

    def err(self, text: str | bytes) -> None:
        self.stderr.write(text.encode() if isinstance(text, str) else text)

    async def flush(self) -> None:
        await self.stdout.flush()
        await self.stderr.flush()

    def fail(self, message: str, status: int = 1) -> int:
        """Write `name: message` to stderr and return `status`, as toybox tools do."""
        self.err(f"{self.name}: {message}\n")
        return status


Command = Callable[[CommandContext], Awaitable[int]]
