"""`tcp:PORT` streams to servers inside the device: `adb forward`, the uiautomator2 server's lifecycle."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import adbutils
import pytest

from emulator import Emulator
from emulator.transport import AdbStream
from tests.emulator.conftest import adb_run

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

START_U2 = "CLASSPATH=/data/local/tmp/u2.jar app_process / com.wetest.uia2.Main -p 9008"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def forwarded(emulator: Emulator) -> Iterator[tuple[int, str]]:
    """A host port forwarded by adb to the device's port 9008."""
    port = free_port()
    result = adb_run("forward", f"tcp:{port}", "tcp:9008", serial=emulator.serial)
    assert result.returncode == 0, result.stderr
    yield port, emulator.serial
    adb_run("forward", "--remove", f"tcp:{port}", serial=emulator.serial)


def ping(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
            return bytes(response.read())
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def test_uiautomator_server_lives_as_long_as_its_shell(
    emulator: Emulator, forwarded: tuple[int, str]
) -> None:
    port, serial = forwarded
    dev = adbutils.AdbClient().device(serial)
    assert ping(port) is None  # nothing listens on device port 9008 yet: the OPEN is refused

    missing = dev.shell2(START_U2)
    assert missing.returncode == 1
    assert "ClassNotFoundException" in missing.output

    dev.sync.push(b"jar", "/data/local/tmp/u2.jar")
    process = dev.shell(START_U2, stream=True)
    try:
        assert process.read_string(52) == "[server] INFO: [UiAutomator2Server] Starting Server\n"
        assert ping(port) == b"pong"
        assert emulator.call(lambda d: 9008 in d.device_ports)
        second = dev.shell2(START_U2)  # a second server cannot register while one runs
        assert "already registered" in second.output
        assert ping(port) == b"pong"
    finally:
        process.close()
    for _ in range(50):
        if not emulator.call(lambda d: 9008 in d.device_ports):
            break
        threading.Event().wait(0.05)
    assert ping(port) is None


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def test_forward_pipes_bytes_both_ways_with_flow_control(
    emulator: Emulator, forwarded: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small backlog makes the device hold back its OKAYs until the pipe has read the data.
    monkeypatch.setattr(AdbStream, "BACKLOG_LIMIT", 100_000)

    # An echo server standing in for an in-device server on device port 9008.
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    echo_port = server.server_address[1]
    emulator.call(lambda d: d.map_port(9008, echo_port))
    try:
        port, _ = forwarded
        payload = os.urandom(3 * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload):
                chunk = sock.recv(1 << 20)
                assert chunk, f"connection closed after {len(received)} bytes"
                received += chunk
            sender.join()
        assert bytes(received) == payload
    finally:
        emulator.call(lambda d: d.unmap_port(9008))
        server.shutdown()
        server.server_close()
