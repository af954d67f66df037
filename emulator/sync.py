"""The `sync:` service (file transfer), protocol v1 as in AOSP's SYNC.TXT.

The host writes a byte stream of requests `id[4] u32le length, payload`; record
boundaries do not line up with WRTE packets, so everything is read with
`read_exactly`. Requests: STAT, LIST, SEND (`path,<decimal mode>`, then DATA… DONE
with the mtime), RECV, QUIT. Only v1: the device does not advertise `stat_v2`/`ls_v2`.
"""

from __future__ import annotations

import stat
import struct

from emulator.filesystem import DirNode, FileSystem, FsError, normalize
from emulator.transport import AdbStream

SYNC_DATA_MAX = 64 * 1024
_U32 = struct.Struct("<I")
_STAT = struct.Struct("<4sIII")
_DENT = struct.Struct("<4sIIII")
# Largest request payload we accept (a path); adb limits paths to 1024 bytes.
_MAX_REQUEST = 4096


async def serve_sync(fs: FileSystem, stream: AdbStream) -> None:
    """Answer sync requests until QUIT or the stream closes."""
    try:
        while True:
            header = await stream.read_exactly(8)
            ident, length = header[:4], _U32.unpack(header[4:])[0]
            if length > _MAX_REQUEST:
                await _fail(stream, f"sync request {ident!r} with a {length}-byte path is too long")
                return
            payload = await stream.read_exactly(length) if length else b""
            path = payload.decode("utf-8", "replace")
            if ident == b"STAT":
                await _stat(fs, stream, path)
            elif ident == b"LIST":
                await _list(fs, stream, path)
            elif ident == b"SEND":
                if not await _send(fs, stream, path):
                    return
            elif ident == b"RECV":
                await _recv(fs, stream, path)
            elif ident == b"QUIT":
                return
            else:
                await _fail(stream, f"unknown sync request {ident!r}: this device speaks sync v1 only")
                return
    except EOFError:
        return


async def _fail(stream: AdbStream, message: str) -> None:
    data = message.encode()
    await stream.write(b"FAIL" + _U32.pack(len(data)) + data)


async def _stat(fs: FileSystem, stream: AdbStream, path: str) -> None:
    node = fs.lookup(path)
    if node is None:
        await stream.write(_STAT.pack(b"STAT", 0, 0, 0))
        return
    size = len(node.data) if not isinstance(node, DirNode) else 4096
    await stream.write(_STAT.pack(b"STAT", node.mode, size & 0xFFFFFFFF, node.mtime))


async def _list(fs: FileSystem, stream: AdbStream, path: str) -> None:
    out = bytearray()
    try:
        entries = fs.listdir(path)
    except FsError:
        entries = []
    for name, node in entries:
        raw = name.encode()
        size = len(node.data) if not isinstance(node, DirNode) else 4096
        out += _DENT.pack(b"DENT", node.mode, size & 0xFFFFFFFF, node.mtime, len(raw)) + raw
        if len(out) >= stream.session.payload_size:
            await stream.write(bytes(out))
            out.clear()
    out += _DENT.pack(b"DONE", 0, 0, 0, 0)
    await stream.write(bytes(out))


async def _send(fs: FileSystem, stream: AdbStream, spec: str) -> bool:
    """Receive one file; False when the transfer failed and the stream must end."""
    path, _, mode_text = spec.rpartition(",")
    if not path:
        path, mode_text = spec, ""
    try:
        mode = int(mode_text) if mode_text else 0o644
    except ValueError:
        mode = 0o644
    chunks: list[bytes] = []
    while True:
        header = await stream.read_exactly(8)
        ident, value = header[:4], _U32.unpack(header[4:])[0]
        if ident == b"DATA":
            if value > SYNC_DATA_MAX:
                await _fail(stream, f"sync DATA chunk of {value} bytes exceeds {SYNC_DATA_MAX}")
                return False
            chunks.append(await stream.read_exactly(value))
        elif ident == b"DONE":
            mtime = value
            break
        else:
            await _fail(stream, f"unexpected {ident!r} while receiving {path}")
            return False
    if stat.S_ISDIR(mode):
        await _fail(stream, f"{path}: cannot write a directory with SEND")
        return True
    try:
        # adbd creates missing parent folders for a push, so `adb push dir/ /sdcard/x/` works.
        fs.write(normalize(path), b"".join(chunks), mode=mode, mtime=mtime, make_parents=True)
    except FsError as exc:
        await _fail(stream, f"couldn't create file: {exc.strerror}")
        return True
    await stream.write(b"OKAY" + _U32.pack(0))
    return True


async def _recv(fs: FileSystem, stream: AdbStream, path: str) -> None:
    try:
        data = fs.read(path)
    except FsError as exc:
        await _fail(stream, exc.strerror)
        return
    # Pack several DATA records per WRTE: fewer round trips than one packet per 64 KiB.
    out = bytearray()
    for start in range(0, len(data), SYNC_DATA_MAX):
        chunk = data[start : start + SYNC_DATA_MAX]
        out += b"DATA" + _U32.pack(len(chunk)) + chunk
        if len(out) >= stream.session.payload_size:
            await stream.write(bytes(out))
            out.clear()
    out += b"DONE" + _U32.pack(0)
    await stream.write(bytes(out))
