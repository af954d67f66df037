"""`screenrecord`: the virtual screen as a real H.264 video, encoded with PyAV (FFmpeg's libx264).

    screenrecord [--size WxH] [--bit-rate RATE] [--time-limit SEC] [--verbose] [--output-format mp4|h264] FILE

As Android's tool: it records until the time limit (default and most 180 s) or until it is
stopped, and only a stopped recording is a complete MP4 (the muxer writes the index last).
It stops cleanly on SIGINT (Ctrl-C in an interactive shell, `kill -2 PID`, `pkill -INT
screenrecord` from another shell) and on SIGHUP (the host closing the `adb shell` stream, as
when the `adb` client is interrupted); SIGTERM or SIGKILL leave the file unfinished, as on a
phone. A frame is encoded when the screen changes (variable frame rate, like SurfaceFlinger's
virtual display), a frame narrower or wider than the video is letterboxed, and the file is
written to the device's file system when the recording ends (pull it with `adb pull`).
`--output-format=h264 -` streams raw H.264 (Annex B) to stdout instead.

Wrong arguments get the real tool's messages and exit status 2 (its getopt is bionic's, so
unknown options read `screenrecord: unknown option -- NAME`). Formats other than mp4 and h264
(webm, 3gpp, frames, raw-frames) are refused by this virtual device.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal as signals
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from emulator.filesystem import FsError, normalize
from emulator.shell_io import CommandContext

if TYPE_CHECKING:
    import av.container
    from PIL import Image

    from emulator.device import VirtualDevice

log = logging.getLogger(__name__)

MIN_BIT_RATE = 100_000
MAX_BIT_RATE = 200 * 1_000_000
MAX_TIME_LIMIT_S = 180
DEFAULT_BIT_RATE = 20_000_000
VERSION = "1.3"
# How often the screen is looked at; a frame is encoded only when it changed.
TICK_S = 0.1
_LONG_OPTIONS = {
    "help": False,
    "verbose": False,
    "size": True,
    "bit-rate": True,
    "time-limit": True,
    "bugreport": False,
    "show-device-info": False,
    "show-frame-time": False,
    "rotate": False,
    "output-format": True,
    "codec-name": True,
    "monotonic-time": False,
    "persistent-surface": False,
}
_FORMATS = ("mp4", "h264", "webm", "3gpp", "frames", "raw-frames")


class UsageError(Exception):
    """Arguments the real tool refuses: its message, exit status 2."""


@dataclass
class Options:
    path: str
    size: tuple[int, int] | None = None
    bit_rate: int = DEFAULT_BIT_RATE
    time_limit_s: int = MAX_TIME_LIMIT_S
    output_format: str = "mp4"
    verbose: bool = False
    help: bool = False


def usage() -> str:
    return (
        "Usage: screenrecord [options] <filename>\n\n"
        f"Android screenrecord v{VERSION}.  Records the device's display to a .mp4 file.\n\n"
        "Options:\n"
        "--size WIDTHxHEIGHT\n"
        '    Set the video size, e.g. "1280x720".  Default is the device\'s main\n'
        "    display resolution (if supported), 1280x720 if not.  For best results,\n"
        "    use a size supported by the AVC encoder.\n"
        "--bit-rate RATE\n"
        "    Set the video bit rate, in bits per second.  Value may be specified as\n"
        "    bits or megabits, e.g. '4000000' is equivalent to '4M'.  "
        f"Default {DEFAULT_BIT_RATE // 1_000_000}Mbps.\n"
        "--bugreport\n"
        "    Add additional information, such as a timestamp overlay, that is helpful\n"
        "    in videos captured to illustrate bugs.\n"
        "--time-limit TIME\n"
        f"    Set the maximum recording time, in seconds.  Default / maximum is {MAX_TIME_LIMIT_S}.\n"
        "--verbose\n"
        "    Display interesting information on stdout.\n"
        "--help\n"
        "    Show this message.\n\n"
        "Recording continues until Ctrl-C is hit or the time limit is reached.\n\n"
    )


def _c_atoi(text: str) -> int:
    """C's atoi: leading blanks, a sign, digits; whatever follows is ignored (0 when no digits)."""
    text = text.lstrip()
    sign, digits = 1, ""
    if text[:1] in "+-" and text:
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return sign * int(digits) if digits else 0


def _parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.partition("x")
    if not (width.isdigit() and sep and height.isdigit()):
        raise UsageError(f"Invalid size '{text}', must be width x height")
    w, h = int(width), int(height)
    if w == 0 or h == 0:
        raise UsageError(f"Invalid size {w}x{h}, width and height may not be zero")
    return w, h


def _parse_bit_rate(text: str) -> int:
    number = text[:-1] if text[-1:] in ("m", "M") else text
    if not number.lstrip("-").isdigit():
        raise UsageError(f"Unrecognized value: {text}")
    value = int(number) * (1_000_000 if number != text else 1)
    if not MIN_BIT_RATE <= value <= MAX_BIT_RATE:
        raise UsageError(f"Bit rate {value}bps outside acceptable range [{MIN_BIT_RATE},{MAX_BIT_RATE}]")
    return value


def parse_args(args: list[str]) -> Options:
    """The options as getopt_long reads them (`--name value`, `--name=value`, unique prefixes)."""
    options = Options(path="")
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if not arg.startswith("--") or arg == "-":
            if arg.startswith("-") and arg != "-":
                raise UsageError(f"screenrecord: unknown option -- {arg[1:2]}")
            operands.append(arg)
            continue
        name, eq, value = arg[2:].partition("=")
        matches = [o for o in _LONG_OPTIONS if o == name] or [o for o in _LONG_OPTIONS if o.startswith(name)]
        if len(matches) != 1:
            word = "ambiguous" if len(matches) > 1 else "unknown"
            raise UsageError(f"screenrecord: {word} option -- {name}")
        option = matches[0]
        if _LONG_OPTIONS[option] and not eq:
            if index >= len(args):
                raise UsageError(f"screenrecord: option requires an argument -- {option}")
            value = args[index]
            index += 1
        elif not _LONG_OPTIONS[option] and eq:
            raise UsageError(f"screenrecord: option doesn't take an argument -- {option}")
        if option == "help":
            options.help = True
            return options
        if option == "verbose":
            options.verbose = True
        elif option == "size":
            options.size = _parse_size(value)
        elif option == "bit-rate":
            options.bit_rate = _parse_bit_rate(value)
        elif option == "time-limit":
            limit = _c_atoi(value)
            if limit <= 0 or limit > MAX_TIME_LIMIT_S:
                raise UsageError(f"Time limit {limit}s outside acceptable range [1,{MAX_TIME_LIMIT_S}]")
            options.time_limit_s = limit
        elif option == "output-format":
            if value not in _FORMATS:
                raise UsageError(f"Unknown format '{value}'")
            options.output_format = value
    if len(operands) != 1:
        raise UsageError("Must specify output file (see --help).")
    options.path = operands[0]
    return options


class Recording:
    """A running `screenrecord`: a process of the device that takes signals (`kill`, `pkill`)."""

    name = "screenrecord"

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stop = asyncio.Event()
        self.killed_by: int | None = None

    def signal(self, signum: int) -> None:
        """SIGINT and SIGHUP end the recording cleanly; any other signal ends the process at once."""
        if signum in (signals.SIGINT, signals.SIGHUP):
            self.stop.set()
        elif signum != 0:
            self.killed_by = signum
            self.stop.set()


class _Encoder:
    """Frames in, H.264 out: an MP4 in memory, or raw Annex B packets handed to `emit`."""

    def __init__(self, options: Options, size: tuple[int, int]) -> None:
        import av

        self.size = size
        self.raw = options.output_format == "h264"
        self.buffer = io.BytesIO()
        self.pending = bytearray()
        self.container: av.container.OutputContainer | None = None
        self.time_base = Fraction(1, 1000)
        if self.raw:
            context: Any = av.CodecContext.create("libx264", "w")
        else:
            self.container = av.open(self.buffer, "w", format="mp4")
            context = self.container.add_stream("libx264", rate=60).codec_context
        context.width, context.height = size
        context.pix_fmt = "yuv420p"
        context.time_base = self.time_base
        context.bit_rate = options.bit_rate
        context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        context.framerate = Fraction(60)
        self.context = context
        if self.container is not None:
            self.stream = self.container.streams.video[0]
            self.stream.time_base = self.time_base
        self.frames = 0
        self.last_pts = -1

    def add(self, image: Image.Image, at_ms: int) -> None:
        import av

        frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")  # type: ignore[no-untyped-call]
        frame.pts = self.last_pts = max(at_ms, self.last_pts + 1)
        frame.time_base = self.time_base
        self._write(self.context.encode(frame))
        self.frames += 1

    def _write(self, packets: list[Any]) -> None:
        for packet in packets:
            if self.container is not None:
                packet.stream = self.stream
                self.container.mux(packet)
            else:
                self.pending += bytes(packet)

    def take_pending(self) -> bytes:
        data = bytes(self.pending)
        self.pending.clear()
        return data

    def finish(self) -> bytes:
        """Flush the encoder and close the file: the whole MP4 (or the last raw packets)."""
        self._write(self.context.encode(None))
        if self.container is not None:
            self.container.close()
            return self.buffer.getvalue()
        return self.take_pending()

    def unfinished(self) -> bytes:
        """What a killed process leaves: the bytes muxed so far, without the index."""
        return self.buffer.getvalue()


def content_area(display: tuple[int, int], video: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where the display goes in the video (x, y, w, h): as large as fits, aspect kept, centred."""
    aspect = display[1] / display[0]
    width, height = video
    if height > int(width * aspect):
        out_w, out_h = width, int(width * aspect)
    else:
        out_w, out_h = int(height / aspect), height
    return (width - out_w) // 2, (height - out_h) // 2, out_w, out_h


class _Camera:
    """The device's screen at the video's size (letterboxed), redrawn only when it changed."""

    def __init__(self, device: VirtualDevice, size: tuple[int, int]) -> None:
        self.device = device
        self.size = size
        self._source: object = None
        self._frame: Image.Image | None = None

    def look(self) -> tuple[Image.Image, bool]:
        """The current frame, and whether it differs from the previous look."""
        from PIL import Image

        from interpreter.appmodel import screen

        source: Image.Image | None = screen.render_image(self.device.phone) if self.device.screen_on else None
        if self._frame is not None and source is self._source:
            return self._frame, False
        frame = Image.new("RGB", self.size)
        if source is not None:
            x, y, w, h = content_area((source.width, source.height), self.size)
            frame.paste(source.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), (x, y))
        self._source, self._frame = source, frame
        return frame, True


async def screenrecord(ctx: CommandContext) -> int:
    try:
        options = parse_args(ctx.args[1:])
    except UsageError as exc:
        ctx.err(f"{exc}\n")
        return 2
    if options.help:
        ctx.err(usage())
        return 0
    if options.output_format not in ("mp4", "h264"):
        ctx.err(
            f"screenrecord: --output-format={options.output_format} is not recorded by this virtual "
            "device; use mp4 (the default) or h264\n"
        )
        return 2
    device = ctx.device
    if device.faults.screenrecord_error is not None:  # the encoder cannot be had (emulator/faults.py)
        ctx.err(f"{device.faults.screenrecord_error}\n")
        return 1
    display = device.display_size()
    size = options.size or display
    to_stdout = options.output_format == "h264" and options.path == "-"
    path = normalize(options.path, ctx.cwd)
    if not to_stdout:
        try:
            device.fs.write(path, b"")
        except FsError as exc:
            ctx.err(f"Unable to open '{options.path}': {exc.strerror}\n")
            return 1
    if size[0] % 2 or size[1] % 2:
        # libx264 takes 4:2:0 frames of even sizes only; a phone's AVC encoder refuses such a size too.
        ctx.err(f"ERROR: unable to configure video/avc codec at {size[0]}x{size[1]} (err=-2147483648)\n")
        return 1
    if options.verbose and not to_stdout:
        ctx.out(f"Main display is {display[0]}x{display[1]} @60.00fps (orientation=0)\n")
        rate = options.bit_rate / 1e6
        ctx.out(f"Configuring recorder for {size[0]}x{size[1]} video/avc at {rate:.2f}Mbps\n")
        x, y, w, h = content_area(display, size)
        ctx.out(f"Content area is {w}x{h} at offset x={x} y={y}\n")
        await ctx.flush()
    recording = Recording(ctx.pid or device.allocate_pid())
    device.signalable[recording.pid] = recording
    encoder = _Encoder(options, size)
    camera = _Camera(device, size)
    started = time.monotonic()
    deadline = started + options.time_limit_s
    try:
        try:
            while True:
                frame, changed = camera.look()
                now_ms = int((time.monotonic() - started) * 1000)
                if changed:
                    encoder.add(frame, now_ms)
                    if to_stdout:
                        ctx.out(encoder.take_pending())
                        await ctx.flush()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if options.verbose and not to_stdout:
                        ctx.out("Time limit reached\n")
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(recording.stop.wait(), min(TICK_S, remaining))
                if recording.stop.is_set():
                    break
        except asyncio.CancelledError:
            # The host closed the stream: adbd hangs up the process, which ends the file cleanly.
            _finish(device, path, encoder, camera, started, to_stdout)
            raise
        if recording.killed_by is not None:
            if not to_stdout:
                device.fs.write(path, encoder.unfinished())
            return 128 + recording.killed_by
        if options.verbose and not to_stdout:
            ctx.out("Stopping encoder and muxer\n")
        tail = _finish(device, path, encoder, camera, started, to_stdout)
        if to_stdout:
            ctx.out(tail)
        return 0
    finally:
        device.signalable.pop(recording.pid, None)


def _finish(
    device: VirtualDevice, path: str, encoder: _Encoder, camera: _Camera, started: float, to_stdout: bool
) -> bytes:
    """The last frame again at the stop time (so the video lasts as long as the recording), then
    the file closed and written; the raw tail when streaming."""
    frame, _ = camera.look()
    encoder.add(frame, int((time.monotonic() - started) * 1000))
    data = encoder.finish()
    if not to_stdout:
        device.fs.write(path, data)
        return b""
    return data
