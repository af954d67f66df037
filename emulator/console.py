"""The emulator console on the console port (5554 for `emulator-5554`), a small subset of the real one.

`adb -s emulator-5554 emu kill` connects here; so can `telnet 127.0.0.1 5554`. Commands:
`help`, `auth TOKEN` (any token is accepted), `avd name`, `ping`, `kill` (stops the
emulator), `quit`/`exit`. Listening here also reserves the console port, as a real
emulator does, so two instances cannot share a serial.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

BANNER = b"Android Console: type 'help' for a list of commands\r\nOK\r\n"
HELP = (
    b"Android console commands:\r\n\r\n"
    b"    help|h|?         print a list of commands\r\n"
    b"    auth             user authentication for the emulator console\r\n"
    b"    avd              control virtual device execution\r\n"
    b"    ping             check if the emulator is alive\r\n"
    b"    kill             kill the emulator instance\r\n"
    b"    quit|exit        quit control session\r\n\r\nOK\r\n"
)


class Console:
    def __init__(self, avd_name: str, on_kill: Callable[[], None]) -> None:
        self.avd_name = avd_name
        self.on_kill = on_kill

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(BANNER)
            while line := await reader.readline():
                command = line.decode("utf-8", "replace").strip()
                words = command.split()
                if not words:
                    continue
                if words[0] in ("quit", "exit"):
                    break
                if words[0] == "kill":
                    writer.write(b"OK: killing emulator, bye bye\r\n")
                    await writer.drain()
                    self.on_kill()
                    break
                writer.write(self._answer(words))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, words: list[str]) -> bytes:
        if words[0] in ("help", "h", "?"):
            return HELP
        if words[0] in ("auth", "ping"):
            return b"I am alive!\r\nOK\r\n" if words[0] == "ping" else b"OK\r\n"
        if words[:2] == ["avd", "name"]:
            return self.avd_name.encode() + b"\r\nOK\r\n"
        if words[:2] == ["avd", "status"]:
            return b"virtual device is running\r\nOK\r\n"
        return b"KO: unknown command, try 'help'\r\n"
