"""The adb wire protocol as the device speaks it, driven by a raw socket playing the host."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from emulator import Emulator
from emulator.adb_protocol import A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, Packet

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(60)]


class Host:
    """A minimal adb host: send packets, read packets."""

    def __init__(self, port: int, max_payload: int = 1024 * 1024) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.send(Packet(A_CNXN, 0x01000001, max_payload, b"host::features=shell_v2,cmd"))
        self.banner = self.read()

    def send(self, packet: Packet) -> None:
        self.sock.sendall(packet.encode())

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "device closed the connection"
            data += chunk
        return data

    def read(self) -> Packet:
        command, arg0, arg1, length, _check, magic = struct.unpack("<6I", self._exact(24))
        assert magic == command ^ 0xFFFFFFFF
        return Packet(command, arg0, arg1, self._exact(length) if length else b"")

    def run(self, service: str, host_id: int = 1) -> tuple[bytes, list[int]]:
        """Open a service, collect its output (OKAYing each WRTE) until CLSE; sizes of the WRTEs."""
        self.send(Packet(A_OPEN, host_id, 0, service.encode() + b"\0"))
        okay = self.read()
        assert (okay.command, okay.arg1) == (A_OKAY, host_id)
        device_id = okay.arg0
        output, sizes = b"", list[int]()
        while True:
            packet = self.read()
            if packet.command == A_CLSE:
                return output, sizes
            assert packet.command == A_WRTE
            assert packet.arg0 == device_id
            output += packet.data
            sizes.append(len(packet.data))
            self.send(Packet(A_OKAY, host_id, device_id))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def host(emulator: Emulator) -> Iterator[Host]:
    h = Host(emulator.adb_port, max_payload=4096)
    yield h
    h.close()


def test_banner_names_the_product_and_features(host: Host) -> None:
    assert host.banner.command == A_CNXN
    assert host.banner.arg0 == 0x01000001
    banner = host.banner.data.decode()
    assert banner.startswith("device::ro.product.name=sdk_gphone64_x86_64;")
    assert banner.endswith(";features=shell_v2,cmd")


def test_unknown_service_is_refused_with_local_id_zero(host: Host) -> None:
    host.send(Packet(A_OPEN, 7, 0, b"localabstract:nobody\0"))
    refusal = host.read()
    assert (refusal.command, refusal.arg0, refusal.arg1) == (A_CLSE, 0, 7)
    host.send(Packet(A_OPEN, 8, 0, b"tcp:9008\0"))  # nothing listens there
    refusal = host.read()
    assert (refusal.command, refusal.arg0, refusal.arg1) == (A_CLSE, 0, 8)


def test_writes_respect_the_hosts_max_payload(host: Host) -> None:
    output, sizes = host.run("exec:screencap -p")
    assert output.startswith(b"\x89PNG")
    assert len(output) > 4096
    assert max(sizes) <= 4096


def test_packets_for_unknown_streams_are_ignored(host: Host) -> None:
    host.send(Packet(A_WRTE, 99, 1234, b"stray"))
    host.send(Packet(A_OKAY, 99, 1234))
    host.send(Packet(A_CLSE, 99, 1234))
    output, _ = host.run("shell:echo still here", host_id=2)
    assert output == b"still here\n"


def test_shell_v2_packets(host: Host) -> None:
    output, _ = host.run("shell,v2,raw:echo a; echo b >&2; exit 5")
    packets = []
    while output:
        kind, length = output[0], int.from_bytes(output[1:5], "little")
        packets.append((kind, output[5 : 5 + length]))
        output = output[5 + length :]
    assert packets == [(1, b"a\n"), (2, b"b\n"), (3, b"\x05")]


def test_a_bad_header_ends_only_that_session(emulator: Emulator, host: Host) -> None:
    with socket.create_connection(("127.0.0.1", emulator.adb_port), timeout=5) as bad:
        bad.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\0" * 10)
        assert bad.recv(100) == b""
    output, _ = host.run("shell:echo fine")
    assert output == b"fine\n"
