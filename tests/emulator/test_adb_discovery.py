"""How adb finds the virtual device: its start-up scan, the announcement, `adb connect`, and vanishing."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from emulator import Emulator, EmulatorError
from tests.emulator.conftest import (
    ADB,
    OUTSIDE_SCAN_PORTS,
    MakeEmulator,
    adb_run,
    free_console_port,
)
from tests.ports import port_free

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(90)]


def devices(server_port: int | None = None) -> dict[str, str]:
    """`adb devices` as {serial: state}."""
    args = ["-P", str(server_port)] if server_port else []
    output = adb_run(*args, "devices").stdout
    rows = [line.split("\t") for line in output.splitlines()[1:] if "\t" in line]
    return dict(rows)


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_listed_when_started_after_the_server(emulator: Emulator) -> None:
    assert devices().get(emulator.serial) == "device"
    long = adb_run("devices", "-l").stdout
    line = next(row for row in long.splitlines() if row.startswith(emulator.serial))
    assert "product:sdk_gphone64_x86_64" in line
    assert "model:sdk_gphone64_x86_64" in line
    assert "device:emu64xa" in line


def test_outside_the_scan_range_the_announcement_finds_it(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(ports=OUTSIDE_SCAN_PORTS)
    assert emu.console_port >= 5900
    assert devices().get(emu.serial) == "device"
    assert adb_run("shell", "getprop", "ro.build.version.sdk", serial=emu.serial).stdout.strip() == "34"


@pytest.fixture
def private_server_port(adb: str) -> object:
    """A second adb server of our own, so that its start-up can be ordered against the emulator's."""
    port = free_console_port(range(6100, 6200, 2))
    yield port
    subprocess.run([ADB, "-P", str(port), "kill-server"], capture_output=True, timeout=30)


def test_listed_when_started_before_the_server(make_emulator: MakeEmulator, private_server_port: int) -> None:
    # The emulator announces itself to a port where no server runs yet; the server's own
    # scan of 5555-5585 at its start must find it.
    emu = make_emulator(adb_server_port=private_server_port)
    subprocess.run([ADB, "-P", str(private_server_port), "start-server"], check=True, capture_output=True)
    assert wait_for(lambda: devices(private_server_port).get(emu.serial) == "device")


def test_announcement_reaches_a_server_that_started_first(private_server_port: int) -> None:
    subprocess.run([ADB, "-P", str(private_server_port), "start-server"], check=True, capture_output=True)
    # Outside the scan range the server can only learn of the device from the announcement.
    emu = Emulator(console_port=free_console_port(OUTSIDE_SCAN_PORTS), adb_server_port=private_server_port)
    emu.start()
    try:
        emu.wait_ready(timeout=10)
        assert devices(private_server_port).get(emu.serial) == "device"
    finally:
        emu.stop()
    assert wait_for(lambda: emu.serial not in devices(private_server_port))


def test_adb_connect_makes_a_second_transport(emulator: Emulator) -> None:
    address = f"127.0.0.1:{emulator.adb_port}"
    assert "connected to" in adb_run("connect", address).stdout
    try:
        listed = devices()
        assert listed.get(address) == "device"
        assert listed.get(emulator.serial) == "device"
        assert adb_run("shell", "echo", "hello", serial=address).stdout == "hello\n"
    finally:
        adb_run("disconnect", address)


def test_stopping_makes_it_vanish(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    assert emu.serial in devices()
    emu.stop()
    assert wait_for(lambda: emu.serial not in devices())
    assert port_free(emu.adb_port)
    assert port_free(emu.console_port)
    assert adb_run("shell", "true", serial=emu.serial).returncode != 0
    emu.start()  # the same port again, at once: adb finds it again
    emu.wait_ready(timeout=10)
    assert wait_for(lambda: devices().get(emu.serial) == "device")


def test_two_emulators_at_once_keep_their_own_state(make_emulator: MakeEmulator) -> None:
    first, second = make_emulator(), make_emulator()
    assert first.serial != second.serial
    listed = devices()
    assert listed.get(first.serial) == listed.get(second.serial) == "device"
    adb_run("shell", "monkey -p com.example.shop -c android.intent.category.LAUNCHER 1", serial=first.serial)
    assert first.call(lambda d: d.phone.foreground_package()) == "com.example.shop"
    assert second.call(lambda d: d.phone.foreground_package()) != "com.example.shop"
    serials = {
        adb_run("shell", "getprop", "ro.serialno", serial=emu.serial).stdout.strip()
        for emu in (first, second)
    }
    assert len(serials) == 2


def test_console_kill_stops_the_emulator(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.console_port), timeout=5) as console:
        assert console.recv(200).startswith(b"Android Console")
        console.sendall(b"avd name\n")
        assert b"phoneflow_" in console.recv(200)
    assert "killing emulator" in adb_run("emu", "kill", serial=emulator.serial).stdout
    assert wait_for(lambda: not emulator.running)


def test_a_taken_port_is_reported(emulator: Emulator) -> None:
    clash = Emulator(console_port=emulator.console_port)
    clash.start()
    with pytest.raises(EmulatorError, match="cannot listen on 127.0.0.1"):
        clash.wait_ready(timeout=5)
    clash.stop()
    with pytest.raises(EmulatorError, match="even number"):
        Emulator(console_port=5555)


def test_reboot_drops_the_transport_and_starts_the_phone_afresh(emulator: Emulator) -> None:
    serial = emulator.serial
    adb_run("shell", "monkey -p com.example.shop 1; echo kept > /sdcard/f", serial=serial)
    assert emulator.call(lambda d: d.phone.foreground_package()) == "com.example.shop"
    assert adb_run("reboot", serial=serial).returncode == 0
    assert adb_run("wait-for-device", serial=serial, timeout=20).returncode == 0
    assert adb_run("shell", "cat /sdcard/f", serial=serial).stdout == "kept\n"
    assert emulator.call(lambda d: d.phone.running_packages()) == []
    assert "cannot run as root" in adb_run("root", serial=serial).stdout


def test_ready_well_under_a_second(make_emulator: MakeEmulator) -> None:
    started = time.monotonic()
    emu = make_emulator()  # started, listening, and listed by the adb server as `device`
    assert time.monotonic() - started < 1.0
    assert devices().get(emu.serial) == "device"
