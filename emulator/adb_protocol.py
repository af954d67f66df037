"""The adb wire packet: a 24-byte little-endian header and an optional payload.

    command, arg0, arg1, data_length, data_check, magic (= command ^ 0xffffffff)

Only what a device side needs: encode a packet, read one from a stream. The
checksum is written as 0 and never verified: with protocol version 0x01000001 the
host stops sending it, and adb 29 accepts any value from the device.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257

COMMAND_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
}

# The version the device answers with; the lower of host and device wins.
A_VERSION = 0x01000001
# What the device offers as the largest WRTE payload; the host sizes its WRTEs to it.
MAX_PAYLOAD = 1024 * 1024
# A sanity limit on what we accept from the host (adb's own MAX_PAYLOAD is 1 MiB).
MAX_ACCEPTED_PAYLOAD = 1024 * 1024

_HEADER = struct.Struct("<6I")
HEADER_SIZE = _HEADER.size


class ProtocolError(Exception):
    """The peer sent something that is not an adb packet; the session must end."""


@dataclass(frozen=True, slots=True)
class Packet:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")

    def encode(self) -> bytes:
        """The packet as bytes on the wire (checksum 0, see the module docstring)."""
        header = _HEADER.pack(
            self.command, self.arg0, self.arg1, len(self.data), 0, self.command ^ 0xFFFFFFFF
        )
        return header + self.data

    def __repr__(self) -> str:
        preview = self.data[:40]
        return f"Packet({self.name}, {self.arg0}, {self.arg1}, {len(self.data)}B {preview!r})"


def decode_header(header: bytes) -> tuple[int, int, int, int]:
    """Split a 24-byte header into (command, arg0, arg1, data_length), checking the magic."""
    command, arg0, arg1, length, _check, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad adb packet magic 0x{magic:08x} for command 0x{command:08x}")
    if length > MAX_ACCEPTED_PAYLOAD:
        raise ProtocolError(f"adb packet payload of {length} bytes exceeds {MAX_ACCEPTED_PAYLOAD}")
    return command, arg0, arg1, length


async def read_packet(reader: asyncio.StreamReader) -> Packet:
    """Read one packet; raises `asyncio.IncompleteReadError` at end of stream."""
    command, arg0, arg1, length = decode_header(await reader.readexactly(HEADER_SIZE))
    data = await reader.readexactly(length) if length else b""
    return Packet(command, arg0, arg1, data)
