"""File transfer with `adb push`/`adb pull` and adbutils' sync: sizes, checksums, modes, mtimes."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import adbutils
import pytest

from emulator import Emulator
from tests.emulator.conftest import adb_run

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

MTIME = 1_700_000_000


def test_push_and_pull_5_mb_keep_content_mode_and_mtime(emulator: Emulator, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 13)  # not a multiple of any chunk size
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    local.chmod(0o640)
    os.utime(local, (MTIME, MTIME))

    pushed = adb_run("push", str(local), "/data/local/tmp/big.bin", serial=emulator.serial)
    assert pushed.returncode == 0, pushed.stderr
    remote_md5 = adb_run("shell", "md5sum /data/local/tmp/big.bin", serial=emulator.serial).stdout.split()[0]
    assert remote_md5 == hashlib.md5(data).hexdigest()
    node = emulator.call(lambda d: d.fs.lookup("/data/local/tmp/big.bin"))
    assert node is not None
    assert (stat.S_IMODE(node.mode), node.mtime) == (0o640, MTIME)

    back = tmp_path / "back.bin"
    pulled = adb_run("pull", "-a", "/data/local/tmp/big.bin", str(back), serial=emulator.serial)
    assert pulled.returncode == 0, pulled.stderr
    assert hashlib.md5(back.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    assert stat.S_IMODE(back.stat().st_mode) == 0o640
    assert int(back.stat().st_mtime) == MTIME


def test_push_a_folder_and_list_it(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("BB")
    assert adb_run("push", str(folder), "/sdcard/", serial=emulator.serial).returncode == 0
    listing = adb_run("shell", "ls /sdcard/tree /sdcard/tree/sub", serial=emulator.serial).stdout
    assert listing == "/sdcard/tree:\na.txt\nsub\n\n/sdcard/tree/sub:\nb.txt\n"
    out = tmp_path / "out"
    assert adb_run("pull", "/sdcard/tree", str(out), serial=emulator.serial).returncode == 0
    assert (out / "sub" / "b.txt").read_text() == "BB"


def test_pull_of_a_missing_file_fails_cleanly(emulator: Emulator, tmp_path: Path) -> None:
    result = adb_run("pull", "/data/local/tmp/none", str(tmp_path / "x"), serial=emulator.serial)
    assert result.returncode == 1
    assert "does not exist" in result.stdout + result.stderr


def test_adbutils_sync(emulator: Emulator, tmp_path: Path) -> None:
    dev = adbutils.AdbClient().device(emulator.serial)
    dev.sync.push(b"x" * 70_000, "/data/local/tmp/u.bin", mode=0o755)
    info = dev.sync.stat("/data/local/tmp/u.bin")
    assert (info.size, stat.S_IMODE(info.mode)) == (70_000, 0o755)
    assert dev.sync.read_bytes("/data/local/tmp/u.bin") == b"x" * 70_000
    names = {entry.path for entry in dev.sync.list("/data/local/tmp")}
    assert "u.bin" in names
    assert dev.sync.stat("/data/local/tmp/absent").size == 0
    assert dev.sync.exists("/sdcard")
    assert not dev.sync.exists("/sdcard/absent")
