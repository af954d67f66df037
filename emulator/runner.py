"""Running a virtual device: `EmulatorService` on an asyncio loop, `Emulator` in a background thread.

    from emulator import Emulator
    with Emulator(console_port=5560) as emu:      # starts, waits until adb sees it
        print(emu.serial)                          # emulator-5560
        ...                                        # adb / uiautomator2 against it
    # stopped: the device vanishes from `adb devices`

Everything the device does runs on one event loop, so the phone state is never touched
from two threads; `Emulator.call(fn)` runs `fn(device)` on that loop for tests and tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from emulator.console import Console
from emulator.device import VirtualDevice
from emulator.discovery import ADB_SERVER_PORT, Announcer, server_state
from emulator.transport import AdbSession
from interpreter.appmodel import AppModel, sample_apps
from interpreter.errors import PhoneflowError

log = logging.getLogger(__name__)

T = TypeVar("T")

MIN_CONSOLE_PORT = 1024


class EmulatorError(PhoneflowError):
    """The emulator could not start (a port in use, a bad port number, a broken app model)."""


def load_apps(apps: AppModel | Path | str | None) -> AppModel:
    """The app model from a model, a JSON file path, or None for the sample apps."""
    if apps is None:
        return sample_apps()
    if isinstance(apps, AppModel):
        return apps
    return AppModel.load(apps)


def check_console_port(console_port: int) -> None:
    if console_port % 2 or not MIN_CONSOLE_PORT <= console_port <= 65534:
        raise EmulatorError(
            f"console port {console_port} is not valid: use an even number from {MIN_CONSOLE_PORT} to 65534 "
            "(5554–5584 are found by adb's own scan; the adb port is the console port + 1)"
        )


class EmulatorService:
    """The device's listeners (adb port, console port) and its announcer, on the running loop."""

    def __init__(self, apps: AppModel, console_port: int, adb_server_port: int = ADB_SERVER_PORT) -> None:
        check_console_port(console_port)
        self.device = VirtualDevice(apps, console_port)
        self.adb_server_port = adb_server_port
        self.stopped = asyncio.Event()
        self._servers: list[asyncio.Server] = []
        self._sessions: dict[AdbSession, asyncio.Future[None]] = {}
        self.announcer = Announcer(self.device.adb_port, self.device.connected, adb_server_port)

    async def start(self) -> None:
        """Listen on 127.0.0.1:<adb port> and the console port, then announce to the adb server."""
        device = self.device
        console = Console(f"phoneflow_{device.console_port}", self.stopped.set)
        try:
            self._servers.append(await asyncio.start_server(console.serve, "127.0.0.1", device.console_port))
            self._servers.append(await asyncio.start_server(self._serve_adb, "127.0.0.1", device.adb_port))
        except OSError as exc:
            await self.stop()
            raise EmulatorError(
                f"cannot listen on 127.0.0.1:{device.console_port} and :{device.adb_port} "
                f"for {device.serial}: {exc.strerror or exc}; "
                "another emulator may be using them — pick another even --port"
            ) from exc
        self.announcer.start()
        log.info("%s listening on 127.0.0.1:%d (adb)", device.serial, device.adb_port)

    async def _serve_adb(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AdbSession(self.device, reader, writer)
        done = asyncio.get_running_loop().create_future()
        self._sessions[session] = done
        try:
            await session.run()
        except asyncio.CancelledError:
            # Swallowed: asyncio's server callback logs a cancelled handler as an error.
            pass
        finally:
            del self._sessions[session]
            done.set_result(None)

    async def stop(self) -> None:
        """Close the listeners and every adb session (in-device servers stop with their shells)."""
        await self.announcer.stop()
        for server in self._servers:
            server.close()
        # Closing the socket ends each session's read loop, which then cancels its streams.
        sessions = dict(self._sessions)
        for session in sessions:
            session.writer.close()
        if sessions:
            await asyncio.wait(list(sessions.values()), timeout=2.0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()

    async def wait_adb(self, timeout: float) -> bool:
        """Wait until the adb server lists the device as `device`; False after `timeout` seconds.

        Our side is connected as soon as we answer the server's CNXN; the server marks the
        device online only once it has read that answer, so ask the server itself.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            await asyncio.wait_for(self.device.connected.wait(), timeout)
        except TimeoutError:
            return False
        while await server_state(self.device.serial, self.adb_server_port) != "device":
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


class Emulator:
    """A virtual device in a background thread, for tests and scripts (see the module docstring)."""

    def __init__(
        self,
        apps: AppModel | Path | str | None = None,
        console_port: int = 5554,
        adb_server_port: int = ADB_SERVER_PORT,
    ) -> None:
        check_console_port(console_port)
        self.apps = load_apps(apps)
        self.console_port = console_port
        self.adb_port = console_port + 1
        self.serial = f"emulator-{console_port}"
        self.adb_server_port = adb_server_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._service: EmulatorService | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Start the device thread; returns at once (use `wait_ready`)."""
        if self._thread is not None:
            return self
        self._started.clear()
        self._error = None
        self._thread = threading.Thread(target=self._main, name=f"emulator-{self.console_port}", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Block until the device listens and, when an adb server runs on `adb_server_port`, that
        server lists it as `device` (so `adb -s SERIAL ...` and uiautomator2 work at once).

        Raises `EmulatorError` when the device could not start or adb did not connect in time.
        """
        if self._thread is None:
            raise EmulatorError("the emulator is not started: call start() before wait_ready()")
        if not self._started.wait(timeout):
            raise EmulatorError(f"{self.serial} did not start listening within {timeout} s")
        if self._error is not None:
            raise EmulatorError(str(self._error)) from self._error
        service = self._require_service()
        # Only wait for adb when a server answered our announcement; without one the device is ready as is.
        if self._run(self._heard(service, timeout), timeout + 1) and not self._run(
            service.wait_adb(timeout), timeout + 1
        ):
            raise EmulatorError(
                f"the adb server on port {self.adb_server_port} did not connect to {self.serial} "
                f"within {timeout} s; check `adb devices` and the adb server's log"
            )

    @staticmethod
    async def _heard(service: EmulatorService, timeout: float) -> bool:
        """Whether the adb server at `adb_server_port` heard the first announcement."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(service.announcer.tried.wait(), timeout)
        return service.announcer.heard.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the device: close every adb transport and listener; it vanishes from `adb devices`."""
        thread, loop, service = self._thread, self._loop, self._service
        if thread is None:
            return
        if loop is not None and service is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(service.stopped.set)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- access to the device ---------------------------------------------------------------
    def call(self, fn: Callable[[VirtualDevice], T], timeout: float = 10.0) -> T:
        """Run `fn(device)` on the device's loop and return its result (the phone is single-threaded)."""
        service = self._require_service()

        async def run() -> T:
            return fn(service.device)

        return self._run(run(), timeout)

    def _require_service(self) -> EmulatorService:
        if self._service is None or self._loop is None:
            raise EmulatorError(f"{self.serial} is not running")
        return self._service

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise EmulatorError(f"{self.serial} did not answer within {timeout} s") from exc

    # -- the thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported through wait_ready
            self._error = exc
        finally:
            self._started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._service = None

    async def _serve(self) -> None:
        service = EmulatorService(self.apps, self.console_port, self.adb_server_port)
        await service.start()
        self._service = service
        self._started.set()
        try:
            await service.stopped.wait()
        finally:
            await service.stop()
