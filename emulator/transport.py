"""One adb transport: a TCP connection from an adb server (or `adb connect`) = one session.

The session answers the host's CNXN with the device banner, then multiplexes
streams: the host OPENs a service, we accept with OKAY (or refuse with CLSE(0, hid)),
both sides WRTE and OKAY each WRTE, and either side CLSEs. A service runs as a task
that talks to an `AdbStream`; when the host closes the stream the task is cancelled
(like a hang-up), so a held-open shell such as `app_process` can clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from emulator.adb_protocol import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_WRTE,
    MAX_PAYLOAD,
    Packet,
    ProtocolError,
    read_packet,
)

log = logging.getLogger(__name__)

Handler = Callable[["AdbStream"], Awaitable[None]]


class ServiceHost(Protocol):
    """What a session needs from the device it belongs to."""

    def banner(self) -> bytes:
        """The CNXN payload: `device::ro.product.name=...;features=...`."""
        ...

    async def open_service(self, name: str) -> Handler | None:
        """A handler for the service, or None to refuse the OPEN."""
        ...

    def session_started(self, session: AdbSession) -> None: ...

    def session_ended(self, session: AdbSession) -> None: ...


class AdbStream:
    """The device end of one adb stream: a byte pipe with adb's flow control.

    `write` sends WRTEs no larger than the session's payload size and waits for the
    host's OKAY after each one; `read` returns the next chunk the host wrote, b"" at
    end. `read_exactly` reads across WRTE boundaries (sync and HTTP need that).

    Incoming WRTEs are acknowledged at once while less than `BACKLOG_LIMIT` bytes wait
    unread; beyond that the OKAY waits until the service reads, so a slow reader holds
    the host back instead of filling memory (the host sends nothing more on a stream
    until its last WRTE is acknowledged).
    """

    BACKLOG_LIMIT = 4 * 1024 * 1024

    def __init__(self, session: AdbSession, local_id: int, remote_id: int) -> None:
        self.session = session
        self.local_id = local_id
        self.remote_id = remote_id
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buffer = bytearray()
        self._eof = False
        self._okay = asyncio.Event()
        self._okay.set()
        self._backlog = 0
        self._owe_okay = False
        self.closed = asyncio.Event()

    # -- called by the session -------------------------------------------------
    def _feed(self, data: bytes) -> None:
        self._inbox.put_nowait(data)
        self._backlog += len(data)
        if self._backlog < self.BACKLOG_LIMIT:
            self.session.send(Packet(A_OKAY, self.local_id, self.remote_id))
        else:
            self._owe_okay = True

    async def _next(self) -> bytes | None:
        item = await self._inbox.get()
        if item is not None:
            self._backlog -= len(item)
            if self._owe_okay and self._backlog < self.BACKLOG_LIMIT and not self.closed.is_set():
                self._owe_okay = False
                self.session.send(Packet(A_OKAY, self.local_id, self.remote_id))
        return item

    def _peer_okay(self) -> None:
        self._okay.set()

    def _peer_closed(self) -> None:
        self.closed.set()
        self._okay.set()
        self._inbox.put_nowait(None)

    # -- used by services -----------------------------------------------------
    async def read(self) -> bytes:
        """The next bytes the host sent, or b"" once the stream is closed."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        if self._eof:
            return b""
        item = await self._next()
        if item is None:
            self._eof = True
            return b""
        return item

    async def read_exactly(self, size: int) -> bytes:
        """Exactly `size` bytes; raises `EOFError` if the stream ends first."""
        while len(self._buffer) < size:
            if self._eof:
                raise EOFError(f"stream closed after {len(self._buffer)} of {size} bytes")
            item = await self._next()
            if item is None:
                self._eof = True
            else:
                self._buffer += item
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def write(self, data: bytes) -> None:
        """Send `data` to the host, chunked and flow-controlled; a no-op once closed."""
        view = memoryview(data)
        step = self.session.payload_size
        for start in range(0, len(view), step):
            await self._okay.wait()
            if self.closed.is_set():
                return
            self._okay.clear()
            self.session.send(
                Packet(A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + step]))
            )
        await self._okay.wait()

    async def close(self) -> None:
        """Close our end (sends CLSE unless the host closed first)."""
        if not self.closed.is_set():
            self.closed.set()
            self.session.send(Packet(A_CLSE, self.local_id, self.remote_id))
        self.session.forget(self.local_id)


class AdbSession:
    """Serves one TCP connection from the host until it drops."""

    def __init__(self, host: ServiceHost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.reader = reader
        self.writer = writer
        self.payload_size = 4096
        self.connected = False
        self.peer = writer.get_extra_info("peername")
        self._streams: dict[int, AdbStream] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._next_id = 1

    def send(self, packet: Packet) -> None:
        if not self.writer.is_closing():
            self.writer.write(packet.encode())

    def forget(self, local_id: int) -> None:
        self._streams.pop(local_id, None)

    async def run(self) -> None:
        """Serve packets until the connection ends, then cancel every open stream."""
        try:
            while True:
                packet = await read_packet(self.reader)
                await self._dispatch(packet)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as exc:
            log.warning("adb session from %s ended: %s", self.peer, exc)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for stream in list(self._streams.values()):
            stream._peer_closed()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.connected:
            self.connected = False
            self.host.session_ended(self)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def _dispatch(self, packet: Packet) -> None:
        command = packet.command
        if command == A_CNXN:
            # arg1 is the largest payload the host accepts; we offer MAX_PAYLOAD back.
            self.payload_size = max(256, min(packet.arg1, MAX_PAYLOAD))
            self.send(Packet(A_CNXN, A_VERSION, MAX_PAYLOAD, self.host.banner()))
            if not self.connected:
                self.connected = True
                self.host.session_started(self)
        elif command == A_AUTH:
            # We never ask for auth (ro.adb.secure=0); answer as if already authorised.
            self.send(Packet(A_CNXN, A_VERSION, MAX_PAYLOAD, self.host.banner()))
        elif command == A_OPEN:
            await self._open(packet.arg0, packet.data.rstrip(b"\0").decode("utf-8", "replace"))
        elif command == A_OKAY:
            stream = self._streams.get(packet.arg1)
            if stream is not None:
                stream._peer_okay()
        elif command == A_WRTE:
            stream = self._streams.get(packet.arg1)
            if stream is not None:
                stream._feed(packet.data)
        elif command == A_CLSE:
            stream = self._streams.pop(packet.arg1, None)
            if stream is not None:
                stream._peer_closed()
                task = self._tasks.get(stream.local_id)
                if task is not None:
                    task.cancel()
        # Anything else (SYNC, STLS, unknown ids) is ignored, as adbd does.

    async def _open(self, remote_id: int, name: str) -> None:
        try:
            handler = await self.host.open_service(name)
        except Exception:  # a broken service must not end the whole transport
            log.exception("opening adb service %r failed", name)
            handler = None
        if handler is None:
            # Local id zero: adb 29 ignores a refusal with any other id and the client hangs.
            self.send(Packet(A_CLSE, 0, remote_id))
            return
        local_id = self._next_id
        self._next_id += 1
        stream = AdbStream(self, local_id, remote_id)
        self._streams[local_id] = stream
        self.send(Packet(A_OKAY, local_id, remote_id))
        self._tasks[local_id] = asyncio.create_task(self._serve(stream, handler, name))

    async def _serve(self, stream: AdbStream, handler: Handler, name: str) -> None:
        try:
            await handler(stream)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("adb service %r failed", name)
        finally:
            self._tasks.pop(stream.local_id, None)
            await stream.close()
