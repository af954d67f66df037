"""The services a host can OPEN on the virtual device.

    shell:CMD                 shell protocol v1: raw output (stdout and stderr merged), then close
    shell,v2,ARGS:CMD         shell protocol v2: stdout (1), stderr (2) and exit (3) packets
    exec:CMD                  raw output, as `adb exec-out` uses
    sync:                     file transfer (`emulator.sync`)
    tcp:PORT                  a byte pipe to a server inside the device (refused when none listens)

An empty command opens an interactive shell that runs each line it reads. Anything
else is refused with CLSE(0, hid), which adb reports as a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from emulator.shell import Shell
from emulator.shell_io import ShellV2Sink, Sink, StreamSink, v2_packet
from emulator.sync import serve_sync
from emulator.transport import AdbStream, Handler

if TYPE_CHECKING:
    from emulator.device import VirtualDevice

log = logging.getLogger(__name__)

_V2_STDIN, _V2_EXIT, _V2_CLOSE_STDIN, _V2_WINDOW = 0, 3, 4, 5


async def open_service(device: VirtualDevice, name: str) -> Handler | None:
    """The handler for service `name`, or None to refuse it."""
    if name.startswith(("shell:", "exec:")):
        command = name.partition(":")[2]
        return lambda stream: _shell_v1(device, command, stream)
    if name.startswith("shell,"):
        options, _, command = name.partition(":")
        if "v2" not in options.split(","):
            return lambda stream: _shell_v1(device, command, stream)
        env = dict(o.split("=", 1) for o in options.split(",")[1:] if "=" in o)
        return lambda stream: _shell_v2(device, command, env, stream)
    if name.startswith("sync:"):
        return lambda stream: serve_sync(device.fs, stream)
    if name.startswith("tcp:"):
        return await _open_tcp(device, name)
    log.info("refusing adb service %r", name)
    return None


async def _shell_v1(device: VirtualDevice, command: str, stream: AdbStream) -> None:
    shell = Shell(device)
    sink = StreamSink(stream)
    if command.strip():
        await shell.run(command, sink, sink)
        return
    await _interactive(shell, stream, sink, sink)


async def _shell_v2(device: VirtualDevice, command: str, env: dict[str, str], stream: AdbStream) -> None:
    shell = Shell(device, env={k: v for k, v in env.items() if k == "TERM"})
    stdout, stderr = ShellV2Sink(stream, 1), ShellV2Sink(stream, 2)
    if command.strip():
        status = await shell.run(command, stdout, stderr)
    else:
        status = await _interactive(shell, _V2Input(stream), stdout, stderr)
    await stream.write(v2_packet(_V2_EXIT, bytes([status & 0xFF])))


class _V2Input:
    """Reads the stdin packets of a v2 shell stream as plain bytes."""

    def __init__(self, stream: AdbStream) -> None:
        self.stream = stream

    async def read(self) -> bytes:
        while True:
            try:
                header = await self.stream.read_exactly(5)
                data = await self.stream.read_exactly(int.from_bytes(header[1:5], "little"))
            except EOFError:
                return b""
            if header[0] == _V2_STDIN:
                return data
            if header[0] == _V2_CLOSE_STDIN:
                return b""
            # window-size changes and anything else do not concern us


async def _interactive(shell: Shell, source: AdbStream | _V2Input, stdout: Sink, stderr: Sink) -> int:
    """A line-at-a-time shell for `adb shell` without a command; ends at `exit` or end of input."""
    prompt = f"{shell.device.props.get('ro.product.device', 'android')}:/ $ ".encode()
    buffer = b""
    stdout.write(prompt)
    await stdout.flush()
    while True:
        data = await source.read()
        if not data:
            return shell.status
        buffer += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip() in (b"exit", b"logout"):
                return shell.status
            await shell.run(line.decode("utf-8", "replace"), stdout, stderr)
            stdout.write(prompt)
            await stdout.flush()


async def _open_tcp(device: VirtualDevice, name: str) -> Handler | None:
    try:
        device_port = int(name.partition(":")[2].strip("\0"))
    except ValueError:
        return None
    host_port = device.device_ports.get(device_port)
    if host_port is None:
        return None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
    except OSError:
        return None

    async def pipe(stream: AdbStream) -> None:
        async def upstream() -> None:
            while data := await stream.read():
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        task = asyncio.create_task(upstream())
        try:
            while data := await reader.read(stream.session.payload_size):
                await stream.write(data)
        except OSError:
            pass
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            writer.close()

    return pipe
