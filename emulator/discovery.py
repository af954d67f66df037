"""How an adb server finds the virtual device, as it finds a real emulator.

- At its start the adb server connects to every odd port 5555–5585 on 127.0.0.1; the
  device listens on its adb port (console port + 1), so it is found if it was there first.
- A device that starts later announces itself: it sends the smart-socket request
  `host:emulator:<adbport>` (4 hex digits of length, then the text) to 127.0.0.1:5037
  and closes; the server then connects. The announcement is repeated every second
  while no adb transport is connected, so a server started or restarted later (outside
  the scan range too) still finds the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

ADB_SERVER_PORT = 5037
ANNOUNCE_INTERVAL_S = 1.0


async def announce(adb_port: int, server_port: int = ADB_SERVER_PORT) -> bool:
    """Tell the adb server on `server_port` about us; False when no server listens."""
    request = f"host:emulator:{adb_port}".encode()
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server_port), 2.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"%04x" % len(request) + request)
        await writer.drain()
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return True


async def server_state(serial: str, server_port: int = ADB_SERVER_PORT) -> str | None:
    """The state the adb server lists for `serial` (`device`, `offline`, ...); None when not listed."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server_port), 2.0)
    except (OSError, TimeoutError):
        return None
    try:
        request = b"host:devices"
        writer.write(b"%04x" % len(request) + request)
        await writer.drain()
        if await reader.readexactly(4) != b"OKAY":
            return None
        body = await reader.readexactly(int(await reader.readexactly(4), 16))
    except (OSError, ValueError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, state = line.partition("\t")
        if name == serial:
            return state
    return None


class Announcer:
    """Announces the device while no adb transport is connected to it."""

    def __init__(self, adb_port: int, connected: asyncio.Event, server_port: int = ADB_SERVER_PORT) -> None:
        self.adb_port = adb_port
        self.connected = connected
        self.server_port = server_port
        # Set once an adb server accepted an announcement (it will connect to us shortly).
        self.heard = asyncio.Event()
        # Set once the first announcement was tried, heard or not.
        self.tried = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self.connected.is_set():
                if await announce(self.adb_port, self.server_port):
                    self.heard.set()
                    log.debug("announced host:emulator:%d to the adb server", self.adb_port)
                self.tried.set()
            await asyncio.sleep(ANNOUNCE_INTERVAL_S)
