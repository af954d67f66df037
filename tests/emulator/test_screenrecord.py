"""`adb shell screenrecord` on the virtual device: a real H.264 MP4 of its screen, pulled with `adb pull`
and decoded with PyAV; stopped by its time limit, by SIGINT from another shell, or by the host
closing the stream; wrong arguments get the real tool's messages."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest

from emulator import Emulator
from tests.emulator.conftest import ADB, adb_run

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]


def _interruptible() -> None:
    """Ctrl-C ends the adb client as in a terminal, even when the tests run where SIGINT is ignored
    (a background job of a shell without job control: its children inherit the ignore)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def decoded(path: Path) -> tuple[int, tuple[int, int], float]:
    """(frames, (width, height), duration in s) of an MP4 as PyAV decodes it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
    return len(frames), (frames[0].width, frames[0].height), duration


def wait_for_process(emulator: Emulator, name: str) -> str:
    for _ in range(100):
        out = adb_run("shell", f"pidof {name}", serial=emulator.serial).stdout.strip()
        if out:
            return out
        time.sleep(0.05)
    raise AssertionError(f"{name} never ran")


def test_a_time_limited_recording_is_an_mp4_of_the_screen(emulator: Emulator, tmp_path: Path) -> None:
    serial = emulator.serial
    recording = subprocess.Popen(
        [ADB, "-s", serial, "shell", "screenrecord", "--time-limit", "2", "--size", "360x780",
         "--bit-rate", "2M", "/sdcard/run.mp4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.6)
    # The screen changes while it records: a new frame.
    assert adb_run("shell", "monkey -p com.example.shop 1", serial=serial).returncode == 0
    out, err = recording.communicate(timeout=30)
    assert recording.returncode == 0, err
    pulled = adb_run("pull", "/sdcard/run.mp4", str(tmp_path / "run.mp4"), serial=serial)
    assert pulled.returncode == 0, pulled.stderr
    frames, size, duration = decoded(tmp_path / "run.mp4")
    assert size == (360, 780)
    assert frames >= 3  # the first screen, the app, the last frame at the stop
    assert 1.5 <= duration <= 3.5


def test_sigint_from_another_shell_ends_the_file_cleanly(emulator: Emulator, tmp_path: Path) -> None:
    serial = emulator.serial
    recording = subprocess.Popen(
        [ADB, "-s", serial, "shell", "screenrecord --size 240x520 /sdcard/x.mp4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pid = wait_for_process(emulator, "screenrecord")
    assert "screenrecord" in adb_run("shell", "ps -A", serial=serial).stdout
    assert adb_run("shell", f"kill -2 {pid}", serial=serial).returncode == 0
    recording.communicate(timeout=30)
    assert recording.returncode == 0
    assert adb_run("pull", "/sdcard/x.mp4", str(tmp_path / "x.mp4"), serial=serial).returncode == 0
    frames, size, _ = decoded(tmp_path / "x.mp4")
    assert (frames, size) >= (1, (240, 520))
    assert adb_run("shell", "pidof screenrecord", serial=serial).returncode == 1


def test_the_host_closing_the_stream_ends_the_file_cleanly(emulator: Emulator, tmp_path: Path) -> None:
    """As when the adb client is interrupted (Ctrl-C on the host): the phone hangs the process up."""
    serial = emulator.serial
    recording = subprocess.Popen(
        [ADB, "-s", serial, "shell", "screenrecord", "--size", "240x520", "/sdcard/hup.mp4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_interruptible,
    )  # fmt: skip
    wait_for_process(emulator, "screenrecord")
    recording.send_signal(signal.SIGINT)
    recording.communicate(timeout=30)
    for _ in range(100):
        if adb_run("shell", "pidof screenrecord", serial=serial).returncode == 1:
            break
        time.sleep(0.05)
    assert adb_run("pull", "/sdcard/hup.mp4", str(tmp_path / "hup.mp4"), serial=serial).returncode == 0
    assert decoded(tmp_path / "hup.mp4")[1] == (240, 520)


def test_sigterm_leaves_an_unfinished_file(emulator: Emulator) -> None:
    serial = emulator.serial
    recording = subprocess.Popen(
        [ADB, "-s", serial, "shell", "screenrecord --size 240x520 /sdcard/t.mp4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_for_process(emulator, "screenrecord")
    assert adb_run("shell", "pkill screenrecord", serial=serial).returncode == 0
    recording.communicate(timeout=30)
    assert recording.returncode == 143
    data = emulator.call(lambda d: d.fs.read("/sdcard/t.mp4"))
    with pytest.raises(av.error.InvalidDataError):
        av.open(io.BytesIO(data)).close()


def test_raw_h264_to_stdout(emulator: Emulator) -> None:
    result = subprocess.run(
        [ADB, "-s", emulator.serial, "exec-out", "screenrecord --output-format=h264 --size 240x520 "
         "--time-limit 1 -"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith(b"\x00\x00\x00\x01")
    with av.open(io.BytesIO(result.stdout), format="h264") as container:
        frames = list(container.decode(video=0))
    assert len(frames) >= 2
    assert (frames[0].width, frames[0].height) == (240, 520)


@pytest.mark.parametrize(
    ("command", "status", "message"),
    [
        ("screenrecord", 2, "Must specify output file (see --help).\n"),
        ("screenrecord --size 12 /sdcard/a.mp4", 2, "Invalid size '12', must be width x height\n"),
        ("screenrecord --size 0x10 /sdcard/a.mp4", 2,
         "Invalid size 0x10, width and height may not be zero\n"),
        ("screenrecord --time-limit 181 /sdcard/a.mp4", 2,
         "Time limit 181s outside acceptable range [1,180]\n"),
        ("screenrecord --bit-rate 4x /sdcard/a.mp4", 2, "Unrecognized value: 4x\n"),
        ("screenrecord --bit-rate 1 /sdcard/a.mp4", 2,
         "Bit rate 1bps outside acceptable range [100000,200000000]\n"),
        ("screenrecord --output-format=gif /sdcard/a.mp4", 2, "Unknown format 'gif'\n"),
        ("screenrecord --colour /sdcard/a.mp4", 2, "screenrecord: unknown option -- colour\n"),
        ("screenrecord --size", 2, "screenrecord: option requires an argument -- size\n"),
        ("screenrecord /nowhere/a.mp4", 1, "Unable to open '/nowhere/a.mp4': No such file or directory\n"),
    ],
)  # fmt: skip
def test_wrong_arguments_get_the_real_messages(
    emulator: Emulator, command: str, status: int, message: str
) -> None:
    result = adb_run("shell", command, serial=emulator.serial)
    assert (result.returncode, result.stderr) == (status, message)


def test_help_prints_the_usage(emulator: Emulator) -> None:
    result = adb_run("shell", "screenrecord --help", serial=emulator.serial)
    assert result.returncode == 0
    assert result.stderr.startswith("Usage: screenrecord [options] <filename>\n")
    assert "--time-limit TIME" in result.stderr
