"""The services a host can OPEN on the virtual device.

    shell:CMD                 shell protocol v1: raw output (stdout and stderr merged), then close
    shell,v2,ARGS:CMD         shell protocol v2: stdout (1), stderr (2) and exit (3) packets
    exec:CMD                  raw output, as `adb exec-out` uses
    sync:                     file transfer (`emulator.sync`)
    tcp:PORT                  a byte pipe to a server inside the device (refused when none listens)
    reboot:                   drop every transport and start the phone afresh
    framebuffer:              the screen as raw RGBA after adbd's version-2 header
    reverse:...               reverse forwarding: listeners installed, listed and removed (`emulator.reverse`)
    root:, unroot:, remount:  answered with why they do not apply

An empty command opens an interactive shell with a small line editor, as `adb shell`
does on a terminal. Limits: a command's stdin is empty (input sent on a stream with a
command is read only by the commands that stream it, `cmd package install -S SIZE`),
and `&` does not put a command in the background. Anything
else is refused with CLSE(0, hid), which adb reports as a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
from typing import TYPE_CHECKING

from emulator.reverse import serve_reverse
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
        return lambda stream: _shell_v2(device, command, options.split(",")[1:], stream)
    if name.startswith("sync:"):
        return lambda stream: serve_sync(device.fs, stream)
    if name.startswith("tcp:"):
        return await _open_tcp(device, name)
    if name.startswith(("root:", "unroot:", "remount:", "reboot:")):
        return lambda stream: _system(device, name.partition(":")[0], stream)
    if name.startswith("reverse:"):
        return lambda stream: serve_reverse(device.reverse_listeners, name.partition(":")[2], stream)
    if name.startswith("framebuffer:"):
        return lambda stream: _framebuffer(device, stream)
    log.info("refusing adb service %r", name)
    return None


async def _system(device: VirtualDevice, service: str, stream: AdbStream) -> None:
    if service == "reboot":
        device.reboot()  # drops this transport too, as a phone going down does
        return
    messages = {
        "root": "adbd cannot run as root in production builds\n",
        "unroot": "adbd not running as root\n",
        "remount": "remount is not supported: this virtual device has no system partition\n",
    }
    await stream.write(messages[service].encode())


async def _framebuffer(device: VirtualDevice, stream: AdbStream) -> None:
    """adbd's `framebuffer:`: a version-2 header (bpp, color space, size, width, height, then offset
    and length of red, blue, green and alpha) and the screen's RGBA pixels, as `screencap` takes them."""
    from interpreter.appmodel import screen  # imported here: Pillow takes a while to import

    image = screen.render_image(device.phone).convert("RGBA")
    header = struct.pack("<14I", 2, 32, 1, image.width * image.height * 4, image.width, image.height,
                         0, 8, 16, 8, 8, 8, 24, 8)  # fmt: skip
    await stream.write(header + image.tobytes())


async def _shell_v1(device: VirtualDevice, command: str, stream: AdbStream) -> None:
    # What the host streams after the command is the command's own input (`exec:cmd package install -S N`).
    shell = Shell(device, read_input=stream.read_exactly)
    sink = StreamSink(stream)
    if command.strip():
        await shell.run(command, sink, sink)
        return
    await _interactive(shell, stream, sink)


async def _shell_v2(device: VirtualDevice, command: str, options: list[str], stream: AdbStream) -> None:
    env = dict(o.split("=", 1) for o in options if "=" in o)
    shell = Shell(device, env={k: v for k, v in env.items() if k == "TERM"})
    stdout, stderr = ShellV2Sink(stream, 1), ShellV2Sink(stream, 2)
    if command.strip():
        status = await shell.run(command, stdout, stderr)
    elif "pty" in options:
        status = await _interactive(shell, _V2Input(stream), stdout)
    else:
        # `echo cmd | adb shell`: no terminal, so no prompt and no echo; stdin is the script.
        source, script = _V2Input(stream), bytearray()
        while data := await source.read():
            script += data
        status = await shell.run(script.decode("utf-8", "replace"), stdout, stderr)
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


class _PtySink(Sink):
    """What a terminal shows: `\n` becomes `\r\n` (a pty's onlcr)."""

    def __init__(self, inner: Sink) -> None:
        super().__init__()
        self.inner = inner

    def write(self, data: bytes) -> None:
        self.inner.write(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    async def flush(self) -> None:
        await self.inner.flush()


_ESCAPE = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)", re.DOTALL)


async def _interactive(shell: Shell, source: AdbStream | _V2Input, out: Sink) -> int:
    """`adb shell` without a command: a terminal-like line editor (echo, backspace, ^C, ^D).

    Ends at `exit`, ^D on an empty line, or the end of input. Everything the commands
    print goes to `out` with terminal line endings, as a pty would deliver it.
    """
    try:
        return await _line_editor(shell, source, out)
    finally:
        shell.hang_up()


async def _line_editor(shell: Shell, source: AdbStream | _V2Input, out: Sink) -> int:
    term = _PtySink(out)
    prompt = f"{shell.device.props.get('ro.product.device', 'android')}:/ $ ".encode()
    line = bytearray()
    out.write(prompt)
    await out.flush()
    while True:
        data = await source.read()
        if not data:
            return shell.status
        for byte in _ESCAPE.sub(b"", data):
            if byte in (0x0D, 0x0A):
                out.write(b"\r\n")
                command = line.decode("utf-8", "replace").strip()
                line.clear()
                if command in ("exit", "logout") or command.startswith("exit "):
                    await shell.run(command, term, term)
                    await out.flush()
                    return shell.status
                if command:
                    await shell.run(command, term, term, wait_jobs=False)  # `CMD &` keeps the prompt
                out.write(prompt)
            elif byte in (0x7F, 0x08):
                if line:
                    line.pop()
                    out.write(b"\b \b")
            elif byte == 0x03:
                line.clear()
                out.write(b"^C\r\n" + prompt)
            elif byte == 0x04:
                if not line:
                    await out.flush()
                    return shell.status
            elif byte >= 0x20 or byte == 0x09:
                line.append(byte)
                out.write(bytes([byte]))
        await out.flush()


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
